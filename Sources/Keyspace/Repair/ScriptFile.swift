import Foundation
import RESP
import SlotdiffCore

/// One repair script: RESP commands as `redis-cli --pipe` reads them, for one target server.
/// Written to a temporary file beside `path` and renamed over it by `finish`, so a script is
/// whole or absent. A key's commands can be cut back to where they began (a key read again
/// from its start while its commands were written).
final class ScriptFile {
    let path: String
    /// The server it is for (`host:port`), when the target was given.
    let node: String?
    private let temporary: String
    private let fd: Int32
    private var batch = RESPBatch(capacity: 1 << 16)
    private var flushed: Int64 = 0
    /// The database the commands so far have selected (a new connection starts in 0).
    private(set) var db = 0
    private(set) var commands = 0
    private(set) var keys = 0

    /// Bytes held before they are written out.
    static let bufferBytes = 1 << 20

    init(path: String, node: String?) throws {
        self.path = path
        self.node = node
        temporary = path + ".partial"
        fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw SlotdiffError(.io, "cannot write \(temporary): \(String(cString: strerror(errno)))", file: temporary) }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Where the next command goes, and how many came before it.
    var mark: (offset: Int64, commands: Int) { (flushed + Int64(batch.bytes.count), commands) }

    func command(_ args: [[UInt8]]) throws {
        batch.begin(args.count)
        for a in args { batch.arg(a) }
        commands += 1
        if batch.bytes.count >= Self.bufferBytes { try flush() }
    }

    /// The commands of one key start here: the database selected first where it is another.
    func beginKey(db: Int) throws -> (offset: Int64, commands: Int) {
        if db != self.db {
            try command([Array("SELECT".utf8), Array(String(db).utf8)])
            self.db = db
        }
        try flush()
        return mark
    }

    /// One more key has its commands here.
    func countKey() { keys += 1 }

    /// Drops every command written since `mark` (which `beginKey` returned).
    func cut(to mark: (offset: Int64, commands: Int)) throws {
        if batch.bytes.count > 0 { try flush() }
        if ftruncate(fd, off_t(mark.offset)) != 0 || lseek(fd, off_t(mark.offset), SEEK_SET) < 0 {
            throw SlotdiffError(.io, "cannot write \(temporary): \(String(cString: strerror(errno)))", file: temporary)
        }
        flushed = mark.offset
        commands = mark.commands
    }

    private func flush() throws {
        let b = batch.bytes
        if b.isEmpty { return }
        try writeAll(fd, b, temporary)
        flushed += Int64(b.count)
        batch = RESPBatch(capacity: 1 << 16)
    }

    /// Writes what is held, syncs, and puts the script in place.
    func finish() throws {
        try flush()
        if fsync(fd) != 0 || rename(temporary, path) != 0 {
            throw SlotdiffError(.io, "cannot write \(path): \(String(cString: strerror(errno)))", file: path)
        }
    }

    /// Removes the partial file (a run that failed leaves no script).
    func discard() { unlink(temporary) }
}
