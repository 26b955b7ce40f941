/// A dump file or DUMP payload that cannot be read: which input, at which byte offset, and
/// what was expected there.
public struct RDBError: Error, CustomStringConvertible, Sendable {
    public var input: String
    public var offset: Int64
    public var reason: String

    public init(input: String, offset: Int64, reason: String) {
        self.input = input
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "\(input): at offset \(offset): \(reason)" }
}
