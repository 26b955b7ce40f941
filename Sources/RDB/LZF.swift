import CKernels

/// LZF decompression (the format Redis uses for strings in dump files).
enum LZF {
    /// Decompresses `input` into exactly `output.count` bytes; false when the data is malformed.
    @inline(__always)
    static func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
        sd_lzf_decompress(input.baseAddress, input.count, output.baseAddress, output.count) == 1
    }
}

/// `LZF.decompress` for the kernel benchmarks (Benchmarks/), which time it apart from the value
/// decoder. SPI rather than API: nothing else outside the module needs it.
@_spi(Benchmarks)
public func lzfDecompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
    LZF.decompress(input, into: output)
}
