import CZstd
import Foundation

/// Writes differences as zstd-compressed JSON Lines while the check runs. Lines are collected
/// and written as independent zstd frames (every 64 KiB of text, every second, and at close),
/// so a run that is killed still leaves a log that reads up to its last frame.
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
                throw LogError("cannot resume diff log \(path): \(e)")
            }
        }
        if fd < 0 { throw LogError("cannot create diff log \(path): \(String(cString: strerror(errno)))") }
        guard let c = ZSTD_createCCtx() else { throw LogError("zstd: out of memory") }
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

    public func close() throws {
        lock.lock()
        defer { lock.unlock() }
        if closed { return }
        try flushLocked()
        closed = true
        _ = Foundation.close(fd)
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
        if ZSTD_isError(n) != 0 { throw LogError("zstd: \(String(cString: ZSTD_getErrorName(n)))") }
        try out.withUnsafeBytes { try writeAll(fd, UnsafeRawBufferPointer(rebasing: $0[0..<n]), path) }
        pending.removeAll(keepingCapacity: true)
    }
}

func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, _ path: String) throws {
    var off = 0
    while off < bytes.count {
        let w = Foundation.write(fd, bytes.baseAddress! + off, bytes.count - off)
        if w < 0 {
            if errno == EINTR { continue }
            throw LogError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        off += w
    }
}

/// Reads a diff log back, line by line. A log cut off inside its last frame (a killed run)
/// yields every complete line before the cut and sets `truncated`.
public final class DiffLogReader {
    public let path: String
    public private(set) var truncated = false

    public init(path: String) { self.path = path }

    public func forEach(_ body: (Difference) throws -> Void) throws {
        guard let fh = FileHandle(forReadingAtPath: path) else {
            throw LogError("cannot open diff log \(path): \(String(cString: strerror(errno)))")
        }
        defer { try? fh.close() }
        guard let dctx = ZSTD_createDCtx() else { throw LogError("zstd: out of memory") }
        defer { ZSTD_freeDCtx(dctx) }
        var carry: [UInt8] = []
        var out = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize())
        var lineNo = 0
        var lastRet = 0
        var sawInput = false
        func emitLines() throws {
            var start = 0
            carry.withUnsafeBufferPointer { _ in }
            while let nl = carry[start...].firstIndex(of: 0x0A) {
                lineNo += 1
                let line = String(decoding: carry[start..<nl], as: UTF8.self)
                do { try body(try Difference(jsonLine: Substring(line))) } catch let e as LogError {
                    throw LogError("\(path): line \(lineNo): \(e.description)")
                }
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
                            throw LogError("\(path) is not a readable diff log (zstd: \(String(cString: ZSTD_getErrorName(r))))")
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
