import Foundation

/// Where a server is and how to log in: `redis://[user[:password]@]host[:port][/db]`
/// (`rediss://` for TLS; `valkey://` and `valkeys://` are accepted too).
///
/// The password is kept out of every rendering: `description`, `debugDescription`,
/// reflection (`dump`, `print` of containing values) and error messages.
public struct RedisEndpoint: Sendable, Hashable {
    public var host: String
    public var port: Int
    /// The database to SELECT; nil means "not given" (the server's default, 0).
    public var db: Int?
    public var username: String?
    public var password: String?
    public var tls: Bool

    public static let defaultPort = 6379

    public init(
        host: String, port: Int = defaultPort, db: Int? = nil, username: String? = nil,
        password: String? = nil, tls: Bool = false
    ) {
        self.host = host
        self.port = port
        self.db = db
        self.username = username
        self.password = password
        self.tls = tls
    }

    /// Parses a `redis://`, `rediss://`, `valkey://` or `valkeys://` URL. User and password
    /// are percent-decoded; an IPv6 host is written in brackets (`redis://[::1]:6380`).
    public init(url: String) throws(RedisError) {
        func invalid(_ why: String) -> RedisError {
            RedisError(.invalidEndpoint, "invalid endpoint \(RedisEndpoint.redact(url)): \(why)")
        }
        guard let schemeEnd = url.range(of: "://") else { throw invalid("expected redis://host[:port][/db]") }
        switch url[..<schemeEnd.lowerBound].lowercased() {
        case "redis", "valkey": tls = false
        case "rediss", "valkeys": tls = true
        default: throw invalid("unknown scheme (use redis:// or rediss://)")
        }
        let rest = url[schemeEnd.upperBound...]
        if rest.contains("?") || rest.contains("#") { throw invalid("query and fragment are not supported") }

        // Authority ends at the first '/' after the last '@' (a password may hold '/' only
        // when percent-encoded, but be lenient about '@').
        let afterUserInfo = rest.lastIndex(of: "@").map { rest.index(after: $0) } ?? rest.startIndex
        let slash = rest[afterUserInfo...].firstIndex(of: "/") ?? rest.endIndex
        var hostPort = rest[afterUserInfo..<slash]
        let path = rest[slash...]
        if afterUserInfo > rest.startIndex {
            let userInfo = rest[rest.startIndex..<rest.index(before: afterUserInfo)]
            if let colon = userInfo.firstIndex(of: ":") {
                guard let u = Self.percentDecode(userInfo[..<colon]),
                    let p = Self.percentDecode(userInfo[userInfo.index(after: colon)...])
                else {
                    throw invalid("bad percent-encoding in the user or password")
                }
                username = u.isEmpty ? nil : u
                password = p
            } else {
                guard let u = Self.percentDecode(userInfo) else { throw invalid("bad percent-encoding in the user") }
                username = u.isEmpty ? nil : u
                password = nil
            }
        } else {
            username = nil
            password = nil
        }

        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw invalid("unclosed '[' in an IPv6 address") }
            let inside = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw invalid("unexpected text after ']'") }
                portText = after.dropFirst()
            }
            guard let h = Self.percentDecode(inside), h.contains(":") else { throw invalid("bad IPv6 address") }
            host = h
        } else {
            if let colon = hostPort.firstIndex(of: ":") {
                portText = hostPort[hostPort.index(after: colon)...]
                hostPort = hostPort[..<colon]
            }
            host = String(hostPort)
        }
        if host.isEmpty { throw invalid("missing host") }
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else { throw invalid("port must be 1-65535") }
            port = p
        } else {
            port = Self.defaultPort
        }
        let dbText = path.drop { $0 == "/" }
        if dbText.isEmpty {
            db = nil
        } else {
            guard let d = Int(dbText), d >= 0 else { throw invalid("database must be a non-negative number") }
            db = d
        }
    }

    /// The same endpoint with this password (e.g. read from an environment variable:
    /// `endpoint.withPassword(RedisEndpoint.password(fromEnvironment: "SLOTDIFF_SOURCE_PASSWORD"))`).
    /// A nil password keeps the current one.
    public func withPassword(_ password: String?) -> RedisEndpoint {
        var e = self
        if let password { e.password = password }
        return e
    }

    /// The value of an environment variable, or nil when unset or empty.
    public static func password(fromEnvironment name: String) -> String? {
        guard let v = ProcessInfo.processInfo.environment[name], !v.isEmpty else { return nil }
        return v
    }

    /// `host:port`, IPv6 in brackets: how errors name a server.
    public var address: String {
        host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// True when the host is a literal IPv4 or IPv6 address (no SNI is sent for those).
    public var hostIsIPAddress: Bool {
        if host.contains(":") { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
    }

    /// Replaces the password of a URL-looking text with `***`, for messages about bad input.
    public static func redact(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://"), let at = text[schemeEnd.upperBound...].lastIndex(of: "@") else {
            return text
        }
        let userInfo = text[schemeEnd.upperBound..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }

    static func percentDecode(_ s: Substring) -> String? {
        var out: [UInt8] = []
        var i = s.utf8.startIndex
        let u = s.utf8
        while i < u.endIndex {
            let c = u[i]
            if c == UInt8(ascii: "%") {
                let h1 = u.index(after: i)
                guard h1 < u.endIndex else { return nil }
                let h2 = u.index(after: h1)
                guard h2 < u.endIndex, let hi = hexValue(u[h1]), let lo = hexValue(u[h2]) else { return nil }
                out.append(hi << 4 | lo)
                i = u.index(after: h2)
            } else {
                out.append(c)
                i = u.index(after: i)
            }
        }
        let text = String(decoding: out, as: UTF8.self)
        return text.utf8.elementsEqual(out) ? text : nil
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension RedisEndpoint: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The URL without the password: `rediss://alice@cache.example:6380/2`.
    public var description: String {
        var s = tls ? "rediss://" : "redis://"
        if let username { s += Self.percentEncode(username) + "@" }
        s += address
        if let db { s += "/\(db)" }
        return s
    }

    public var debugDescription: String {
        "RedisEndpoint(\(description)\(password == nil ? "" : ", password: ***"))"
    }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "host": host, "port": port, "db": db as Any, "username": username as Any,
                "password": password == nil ? "nil" : "***", "tls": tls
            ],
            displayStyle: .struct)
    }

    static func percentEncode(_ s: String) -> String {
        var out = ""
        for c in s.utf8 {
            if (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || "-._~".utf8.contains(c) {
                out.append(Character(UnicodeScalar(c)))
            } else {
                out += "%" + (c < 16 ? "0" : "") + String(c, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
