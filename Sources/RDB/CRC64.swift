import CKernels

/// CRC-64/Jones as Redis computes it (reflected, polynomial 0xad93d23594c935a9, init 0,
/// xorout 0; `crc64("123456789") == 0xe9c6d914c4b8d9ca`). The kernel folds with carry-less
/// multiplication where the CPU has it and falls back to tables.
public enum CRC64 {
    @inline(__always)
    public static func update(_ crc: UInt64, _ bytes: UnsafeRawBufferPointer) -> UInt64 {
        sd_crc64_update(crc, bytes.baseAddress, bytes.count)
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { update(0, $0) } }
}
