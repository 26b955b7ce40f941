import CZstd
import Foundation

/// Where the bytes of a dump come from, read in chunks: a file, standard input, or a
/// zstd-compressed stream of either.
public protocol ByteSource: AnyObject {
    /// Reads up to `into.count` bytes; 0 at the end.
    func read(into: UnsafeMutableRawBufferPointer) throws -> Int
}

/// A file descriptor read with `read(2)`, EINTR retried here and nowhere else.
public final class FileByteSource: ByteSource {
    let fd: Int32
    let name: String
    let owned: Bool

    public init(path: String) throws {
        name = path
        if path == "-" {
            fd = 0
            owned = false
            return
        }
        fd = open(path, O_RDONLY | O_CLOEXEC)
        owned = true
        if fd < 0 {
            throw RDBError(input: path, offset: 0, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
            Foundation.close(fd)
            throw RDBError(input: path, offset: 0, reason: "is a directory, not a dump file")
        }
        #if os(Linux)
            _ = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
        #endif
    }

    deinit { if owned { Foundation.close(fd) } }

    public func read(into buf: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Foundation.read(fd, buf.baseAddress, buf.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw RDBError(input: name, offset: -1, reason: "read failed: \(String(cString: strerror(errno)))")
        }
    }
}

/// Decompresses a zstd stream (`.rdb.zst`) on the fly.
public final class ZstdByteSource: ByteSource {
    let inner: ByteSource
    let name: String
    let dctx: OpaquePointer
    @exclusivity(unchecked) var inBuf: UnsafeMutableRawPointer
    let inCap = 1 << 17
    @exclusivity(unchecked) var inPos = 0
    @exclusivity(unchecked) var inEnd = 0
    @exclusivity(unchecked) var innerDone = false
    @exclusivity(unchecked) var frameOpen = false

    public init(_ inner: ByteSource, name: String) throws {
        self.inner = inner
        self.name = name
        guard let d = ZSTD_createDCtx() else { throw RDBError(input: name, offset: 0, reason: "zstd: out of memory") }
        dctx = d
        inBuf = .allocate(byteCount: inCap, alignment: 16)
    }

    deinit {
        ZSTD_freeDCtx(dctx)
        inBuf.deallocate()
    }

    public func read(into buf: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            if inPos == inEnd && !innerDone {
                inEnd = try inner.read(into: UnsafeMutableRawBufferPointer(start: inBuf, count: inCap))
                inPos = 0
                if inEnd == 0 { innerDone = true }
            }
            if inPos == inEnd && innerDone {
                if frameOpen {
                    throw RDBError(input: name, offset: -1, reason: "zstd stream ends in the middle of a frame (truncated file)")
                }
                return 0
            }
            var input = ZSTD_inBuffer(src: inBuf, size: inEnd, pos: inPos)
            var output = ZSTD_outBuffer(dst: buf.baseAddress, size: buf.count, pos: 0)
            let r = ZSTD_decompressStream(dctx, &output, &input)
            if ZSTD_isError(r) != 0 {
                throw RDBError(input: name, offset: -1, reason: "zstd: \(String(cString: ZSTD_getErrorName(r)))")
            }
            inPos = input.pos
            frameOpen = r != 0
            if output.pos > 0 { return output.pos }
        }
    }
}

/// Bytes already in memory (a DUMP reply).
public final class MemoryByteSource: ByteSource {
    let bytes: [UInt8]
    @exclusivity(unchecked) var pos = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public func read(into buf: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buf.count, bytes.count - pos)
        if n > 0 {
            bytes.withUnsafeBytes { buf.baseAddress!.copyMemory(from: $0.baseAddress! + pos, byteCount: n) }
        }
        pos += n
        return n
    }
}

/// Opens a dump path: `-` is standard input; `.zst` (or zstd magic) is decompressed.
public func openDumpSource(path: String) throws -> ByteSource {
    let file = try FileByteSource(path: path)
    if path.hasSuffix(".zst") || path.hasSuffix(".zstd") { return try ZstdByteSource(file, name: path) }
    if path.hasSuffix(".gz") {
        throw RDBError(
            input: path, offset: 0, reason: "gzip input is not supported; decompress it (gunzip -c \(path) | slotdiff compare - …) or recompress with zstd")
    }
    return file
}
