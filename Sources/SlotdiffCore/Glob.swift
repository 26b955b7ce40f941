/// Redis-style glob matching (`*`, `?`, `[abc]`, `[^a-z]`, `\x`), as SCAN MATCH uses it, so
/// `--match` selects the same keys from a file as from a live server.
public struct GlobPattern: Sendable {
    public let pattern: [UInt8]

    public init(_ pattern: String) { self.pattern = Array(pattern.utf8) }

    public func matches(_ s: UnsafeRawBufferPointer) -> Bool {
        pattern.withUnsafeBytes { Self.match(Array($0), 0, s, 0) }
    }

    public func matches(_ s: [UInt8]) -> Bool { s.withUnsafeBytes { matches($0) } }

    private static func match(_ p: [UInt8], _ pi0: Int, _ s: UnsafeRawBufferPointer, _ si0: Int) -> Bool {
        var pi = pi0, si = si0
        while pi < p.count {
            switch p[pi] {
            case UInt8(ascii: "*"):
                while pi + 1 < p.count && p[pi + 1] == UInt8(ascii: "*") { pi += 1 }
                if pi + 1 == p.count { return true }
                var k = si
                while k <= s.count {
                    if match(p, pi + 1, s, k) { return true }
                    k += 1
                }
                return false
            case UInt8(ascii: "?"):
                if si >= s.count { return false }
                si += 1
            case UInt8(ascii: "["):
                if si >= s.count { return false }
                pi += 1
                let negate = pi < p.count && p[pi] == UInt8(ascii: "^")
                if negate { pi += 1 }
                var matched = false
                while pi < p.count && p[pi] != UInt8(ascii: "]") {
                    if p[pi] == UInt8(ascii: "\\") && pi + 1 < p.count {
                        pi += 1
                        if p[pi] == s[si] { matched = true }
                    } else if pi + 2 < p.count && p[pi + 1] == UInt8(ascii: "-") && p[pi + 2] != UInt8(ascii: "]") {
                        var lo = p[pi], hi = p[pi + 2]
                        if lo > hi { swap(&lo, &hi) }
                        if s[si] >= lo && s[si] <= hi { matched = true }
                        pi += 2
                    } else if p[pi] == s[si] {
                        matched = true
                    }
                    pi += 1
                }
                if negate { matched.toggle() }
                if !matched { return false }
                si += 1
            case UInt8(ascii: "\\") where pi + 1 < p.count:
                pi += 1
                if si >= s.count || p[pi] != s[si] { return false }
                si += 1
            default:
                if si >= s.count || p[pi] != s[si] { return false }
                si += 1
            }
            pi += 1
        }
        return si == s.count
    }
}
