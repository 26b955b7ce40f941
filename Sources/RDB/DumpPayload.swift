import SlotdiffCore

/// A DUMP reply: `[key metadata] type value rdb-version(2, LE) crc64(8, LE)`. Decoded by the
/// same value decoder as dump files.
public enum DumpPayload {
    public static let maxVersion = RDBFileParser.maxRedisVersion

    /// Verifies and decodes a payload into the digester; returns the logical type.
    @discardableResult
    public static func decode(
        _ payload: UnsafeRawBufferPointer, name: String = "DUMP payload",
        into d: CanonicalDigester
    ) throws -> ValueType {
        try decode(payload, with: RDBInput(name: name, borrowing: payload), into: d)
    }

    /// `decode`, reading with `input` (a reader of bytes in memory), which is pointed at the
    /// payload: a batch of payloads shares one reader and its LZF buffer.
    @discardableResult
    public static func decode(_ payload: UnsafeRawBufferPointer, with input: RDBInput, into d: CanonicalDigester) throws -> ValueType {
        let name = input.name
        let n = payload.count
        if n < 11 { throw RDBError(input: name, offset: Int64(n), reason: "payload of \(n) bytes is shorter than the 11-byte minimum") }
        let version = Int(payload.loadUnaligned(fromByteOffset: n - 10, as: UInt16.self).littleEndian)
        let stored = payload.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self).littleEndian
        if stored != 0 {
            let computed = CRC64.update(0, UnsafeRawBufferPointer(rebasing: payload[0..<(n - 8)]))
            if computed != stored {
                throw RDBError(input: name, offset: Int64(n - 8), reason: "payload checksum mismatch")
            }
        }
        let valkey = RDBFileParser.valkeyVersions.contains(version)
        if !valkey && version > maxVersion {
            throw RDBError(input: name, offset: Int64(n - 10), reason: "payload RDB version \(version) is newer than supported (\(maxVersion))")
        }
        input.lend(UnsafeRawBufferPointer(rebasing: payload[0..<(n - 10)]))
        let decoder = ValueDecoder(input: input, flavor: RDBFlavor(version: version, valkey: valkey), digester: d)
        var t = try input.u8("value type")
        if t == 0xF3 && !valkey && version >= 13 {
            try RDBFileParser(input: input).skipKeyMetadata(decoder)
            t = try input.u8("value type")
        }
        let type = try decoder.decode(type: t)
        if !(try input.atEnd()) {
            throw RDBError(input: name, offset: input.offset, reason: "\(n - 10 - Int(input.offset)) bytes left after the value")
        }
        return type
    }
}
