import CZstd
import Foundation

/// Writes differences as zstd-compressed JSON Lines while the check runs. Lines are collected
/// and written as independent zstd frames (every 64 KiB of text, every second, and at close),
/// so a run that is killed still leaves a log that reads up to its last frame.
// Unchecked: every mutable field (the pending text, the zstd context, a C pointer) is touched
// only under `lock`.
public final class DiffLogWriter: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var pending: [UInt8] = []
    private var lastFlush = Date()
    private let cctx: OpaquePointer
    private let level: Int32
    public private(set) var linesWritten = 0

    /// `appendAfter`: keep the first that many bytes of an existing log (the complete frames
    /// of a run being resumed) and write after them; nil starts a new log.
    public init(path: String, level: Int32 = 3, appendAfter: Int64? = nil) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | (appendAfter == nil ? O_TRUNC : 0) | O_CLOEXEC, 0o644)
        if fd >= 0, let keep = appendAfter {
            if ftruncate(fd, off_t(keep)) != 0 || lseek(fd, off_t(keep), SEEK_SET) < 0 {
                let e = String(cString: strerror(errno))
                Foundation.close(fd)
                throw SlotdiffError(.io, "cannot resume diff log \(path): \(e)")
            }
        }
        if fd < 0 { throw SlotdiffError(.io, "cannot create diff log \(path): \(String(cString: strerror(errno)))") }
        guard let c = ZSTD_createCCtx() else { throw SlotdiffError(.io, "zstd: out of memory") }
        cctx = c
        self.level = level
        pending.reserveCapacity(80 * 1024)
    }

    deinit {
        try? close()
        ZSTD_freeCCtx(cctx)
    }

    public func write(_ d: Difference) throws {
        let line = d.jsonLine()
        lock.lock()
        defer { lock.unlock() }
        pending.append(contentsOf: line.utf8)
        pending.append(0x0A)
        linesWritten += 1
        if pending.count >= 64 * 1024 || Date().timeIntervalSince(lastFlush) >= 1 { try flushLocked() }
    }

    public func flush() throws {
        lock.lock()
        defer { lock.unlock() }
        try flushLocked()
    }

    /// Bytes written so far (after a flush, every line is in them).
    public func size() -> Int64 {
        lock.lock()
        defer { lock.unlock() }
        return Int64(lseek(fd, 0, SEEK_CUR))
    }

    private var closed = false

    /// Ends a finished check's log: its closing record, then `close()`. A log without one
    /// (a run interrupted, killed or failed) reads as incomplete.
    public func finish(_ end: DiffLogEnd) throws {
        lock.lock()
        defer { lock.unlock() }
        if closed { throw SlotdiffError(.io, "cannot end diff log \(path): already closed") }
        pending.append(contentsOf: end.jsonLine().utf8)
        pending.append(0x0A)
        try flushLocked()
        closed = true
        if Foundation.close(fd) != 0 { throw SlotdiffError(.io, "cannot write \(path): \(String(cString: strerror(errno)))") }
    }

    public func close() throws {
        lock.lock()
        defer { lock.unlock() }
        if closed { return }
        try flushLocked()
        closed = true
        if Foundation.close(fd) != 0 { throw SlotdiffError(.io, "cannot write \(path): \(String(cString: strerror(errno)))") }
    }

    private func flushLocked() throws {
        lastFlush = Date()
        if pending.isEmpty || closed { return }
        let bound = ZSTD_compressBound(pending.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = out.withUnsafeMutableBytes { o in
            pending.withUnsafeBytes { i in
                ZSTD_compressCCtx(cctx, o.baseAddress, bound, i.baseAddress, i.count, level)
            }
        }
        if ZSTD_isError(n) != 0 { throw SlotdiffError(.io, "zstd: \(String(cString: ZSTD_getErrorName(n)))") }
        try out.withUnsafeBytes { try writeAll(fd, UnsafeRawBufferPointer(rebasing: $0[0..<n]), path) }
        pending.removeAll(keepingCapacity: true)
    }
}

/// Writes all of `bytes` to `fd` (EINTR and short writes retried here, in one place); a
/// failure is an error naming `path`.
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, _ path: String) throws {
    var off = 0
    while off < bytes.count {
        let w = Foundation.write(fd, bytes.baseAddress! + off, bytes.count - off)
        if w < 0 {
            if errno == EINTR { continue }
            throw SlotdiffError(.io, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        off += w
    }
}

/// The last line of the log of a finished check: what the check found, so a reader can tell
/// a complete log from one whose run was interrupted, killed or failed (those have none), and
/// that every difference counted is in the log. Its `kind` is `end`, which no difference has.
///
///     {"kind":"end","result":"differences","differences_total":37,"differences":{"missing":5,…},
///      "source_keys":230,"target_keys":232,"compared":220,"matched":183,"expired":0,"passes":4}
public struct DiffLogEnd: Sendable, Equatable {
    public var differences: [DifferenceKind: Int]
    public var sourceKeys: Int
    public var targetKeys: Int
    public var compared: Int
    public var matched: Int
    public var expired: Int
    public var passes: Int

    public init(counts: CompareCounts, passes: Int) {
        differences = counts.differences.filter { $0.value != 0 }
        sourceKeys = counts.sourceKeys
        targetKeys = counts.targetKeys
        compared = counts.compared
        matched = counts.matched
        expired = counts.expired
        self.passes = passes
    }

    public var differencesTotal: Int { differences.values.reduce(0, +) }
    /// `match` or `differences`, as in the summary.
    public var result: String { differencesTotal == 0 ? "match" : "differences" }

    /// How a closing line starts; no difference line does.
    public static let prefix = "{\"kind\":\"end\""

    public func jsonLine() -> String {
        let kinds = DifferenceKind.allCases.map { "\"\($0.rawValue)\":\(differences[$0] ?? 0)" }.joined(separator: ",")
        return Self.prefix + ",\"result\":\"\(result)\",\"differences_total\":\(differencesTotal),\"differences\":{\(kinds)},"
            + "\"source_keys\":\(sourceKeys),\"target_keys\":\(targetKeys),\"compared\":\(compared),\"matched\":\(matched),"
            + "\"expired\":\(expired),\"passes\":\(passes)}"
    }

    /// Reads a closing line back; its fields must agree with each other.
    public init(jsonLine line: Substring) throws {
        guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], o["kind"] as? String == "end" else {
            throw SlotdiffError(.corruptInput, "not a closing record")
        }
        func int(_ k: String) throws -> Int {
            guard let n = o[k] as? NSNumber, n.intValue >= 0 else { throw SlotdiffError(.corruptInput, "closing record: no \"\(k)\" count") }
            return n.intValue
        }
        guard let kinds = o["differences"] as? [String: Any] else { throw SlotdiffError(.corruptInput, "closing record: no \"differences\" object") }
        var d: [DifferenceKind: Int] = [:]
        for (k, v) in kinds {
            guard let kind = DifferenceKind(rawValue: k), let n = v as? NSNumber, n.intValue >= 0 else {
                throw SlotdiffError(.corruptInput, "closing record: bad \"differences\" entry \"\(k)\"")
            }
            if n.intValue > 0 { d[kind] = n.intValue }
        }
        differences = d
        sourceKeys = try int("source_keys")
        targetKeys = try int("target_keys")
        compared = try int("compared")
        matched = try int("matched")
        expired = try int("expired")
        passes = try int("passes")
        guard try int("differences_total") == differencesTotal, o["result"] as? String == result else {
            throw SlotdiffError(.corruptInput, "closing record: \"result\" and \"differences_total\" disagree with \"differences\"")
        }
    }
}

/// Reads a diff log back, line by line. A log cut off inside its last frame (a killed run)
/// yields every complete line before the cut and sets `truncated`. The closing record of a
/// finished check is not a difference: it is kept in `end`.
public final class DiffLogReader {
    public let path: String
    public private(set) var truncated = false
    /// The closing record; nil when the log has none (its run did not finish).
    public private(set) var end: DiffLogEnd?
    /// Difference lines read (every line but the closing record, whatever `forEach` was given).
    public private(set) var differenceLines = 0

    public init(path: String) { self.path = path }

    /// True when the log was read to its closing record, with nothing cut off after it.
    public var complete: Bool { end != nil && !truncated }

    /// When complete, whether its closing record counts the differences the log holds.
    public var consistent: Bool { end.map { $0.differencesTotal == differenceLines } ?? false }

    /// Reads the log through, counting its lines and reading only its closing record
    /// (`complete`, `end`, `differenceLines` and `truncated` are set): a cheap check of a log
    /// before anything is shown of it.
    public func scan() throws {
        try read(parse: false) { _ in }
    }

    public func forEach(_ body: (Difference) throws -> Void) throws {
        try read(parse: true, body)
    }

    private func read(parse: Bool, _ body: (Difference) throws -> Void) throws {
        truncated = false
        end = nil
        differenceLines = 0
        guard let fh = FileHandle(forReadingAtPath: path) else {
            throw SlotdiffError(.io, "cannot open diff log \(path): \(String(cString: strerror(errno)))")
        }
        defer { try? fh.close() }
        guard let dctx = ZSTD_createDCtx() else { throw SlotdiffError(.io, "zstd: out of memory") }
        defer { ZSTD_freeDCtx(dctx) }
        var carry: [UInt8] = []
        var out = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize())
        var lineNo = 0
        var lastRet = 0
        var sawInput = false
        let endPrefix = Array(DiffLogEnd.prefix.utf8)
        func emitLines() throws {
            var start = 0
            carry.withUnsafeBufferPointer { _ in }
            while let nl = carry[start...].firstIndex(of: 0x0A) {
                lineNo += 1
                let bytes = carry[start..<nl]
                var difference: Difference?
                do {
                    if end != nil { throw SlotdiffError(.corruptInput, "a line after the closing record (two logs joined into one file?)") }
                    if bytes.starts(with: endPrefix) {
                        end = try DiffLogEnd(jsonLine: Substring(String(decoding: bytes, as: UTF8.self)))
                    } else {
                        differenceLines += 1
                        if parse { difference = try Difference(jsonLine: Substring(String(decoding: bytes, as: UTF8.self))) }
                    }
                } catch let e as SlotdiffError {
                    throw SlotdiffError(.corruptInput, "\(path): line \(lineNo): \(e.description)", file: path)
                }
                if let difference { try body(difference) }
                start = nl + 1
            }
            carry.removeFirst(start)
        }
        while true {
            let chunk = fh.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            sawInput = true
            try chunk.withUnsafeBytes { (inBytes: UnsafeRawBufferPointer) in
                var input = ZSTD_inBuffer(src: inBytes.baseAddress, size: inBytes.count, pos: 0)
                while input.pos < input.size {
                    let produced: Int = try out.withUnsafeMutableBytes { o in
                        var output = ZSTD_outBuffer(dst: o.baseAddress, size: o.count, pos: 0)
                        let r = ZSTD_decompressStream(dctx, &output, &input)
                        if ZSTD_isError(r) != 0 {
                            throw SlotdiffError(.corruptInput, "\(path) is not a readable diff log (zstd: \(String(cString: ZSTD_getErrorName(r))))")
                        }
                        lastRet = r
                        return output.pos
                    }
                    carry.append(contentsOf: out[0..<produced])
                    try emitLines()
                }
            }
        }
        if sawInput && lastRet != 0 { truncated = true }
        if !carry.isEmpty { truncated = true }
    }
}

extension DiffLogReader {
    /// After a read: nil when the log is the whole result of its run; else why not, as a
    /// warning when `allowIncomplete`, or an error (a log damaged is an error either way).
    public func incompleteness(allowIncomplete: Bool) throws -> String? {
        if complete {
            guard consistent else {
                throw SlotdiffError(
                    .corruptInput,
                    "\(path): the closing record counts \(end!.differencesTotal) differences but the log holds "
                        + "\(differenceLines) lines: the log is damaged", file: path)
            }
            return nil
        }
        let why = truncated ? "it ends in an incomplete frame: the run was cut off" : "it has no closing record"
        if !allowIncomplete {
            throw SlotdiffError(
                .corruptInput,
                "\(path): incomplete log: the run did not finish (\(why)); "
                    + "its differences are not the whole result. --allow-incomplete reads what it holds", file: path)
        }
        return "\(path): incomplete log: the run did not finish (\(why)); reading what it holds"
    }
}

/// Which lines of diff logs a command reads (`report`, `repair`): kinds, databases (the
/// target's numbers, as logged) and a glob over keys; an empty list lets every value through.
public struct DifferenceFilter: Sendable {
    public var kinds: [DifferenceKind]
    public var dbs: [Int]
    public var match: GlobPattern?

    public init(kinds: [DifferenceKind] = [], dbs: [Int] = [], match: GlobPattern? = nil) {
        self.kinds = kinds
        self.dbs = dbs
        self.match = match
    }

    public func admits(_ d: Difference) -> Bool {
        if !kinds.isEmpty && !kinds.contains(d.kind) { return false }
        if !dbs.isEmpty && !dbs.contains(d.db) { return false }
        if let match, !match.matches(d.key) { return false }
        return true
    }
}
