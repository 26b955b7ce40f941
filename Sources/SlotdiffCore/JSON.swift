import Foundation
import HashSlots

/// Minimal, allocation-light JSON writing for the diff log: one object a line, keys in a fixed
/// order so that logs are easy to diff and grep.
enum JSONText {
    static func quoted(_ s: String, into out: inout String) {
        out.append("\"")
        for u in s.unicodeScalars {
            switch u {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            default:
                if u.value < 0x20 || u.value == 0x7F || u.value == 0x2028 || u.value == 0x2029 {
                    out.append(String(format: "\\u%04x", u.value))
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out.append("\"")
    }
}

extension Difference {
    /// The diff-log line for this difference (without the newline).
    public func jsonLine() -> String {
        var s = "{\"kind\":\"\(kind.rawValue)\",\"db\":\(db),"
        if let sourceDb { s += "\"source_db\":\(sourceDb)," }
        s += "\"slot\":\(slot),"
        if let t = keyText {
            s += "\"key\":"
            JSONText.quoted(t, into: &s)
        } else {
            s += "\"key_base64\":\"\(Data(key).base64EncodedString())\""
        }
        if let side { s += ",\"side\":\"\(side.rawValue)\"" }
        if let origins {
            s += ",\"origins\":["
            for (i, o) in origins.enumerated() {
                if i > 0 { s += "," }
                JSONText.quoted(o, into: &s)
            }
            s += "]"
        }
        if let source { s += ",\"source\":" + Self.json(source) }
        if let target { s += ",\"target\":" + Self.json(target) }
        if let detail {
            s += ",\"detail\":"
            detail.write(into: &s)
        }
        s += "}"
        return s
    }

    static func json(_ st: SideState) -> String {
        let exp = st.expireMs.map { String($0) } ?? "null"
        return "{\"type\":\"\(st.type)\",\"expire_ms\":\(exp),\"digest\":\"\(st.digest)\"}"
    }

    /// Reads a diff-log line back.
    public init(jsonLine line: Substring) throws {
        guard let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw SlotdiffError(.corruptInput, "not a JSON object")
        }
        guard let k = obj["kind"] as? String, let kind = DifferenceKind(rawValue: k) else {
            throw SlotdiffError(.corruptInput, "missing or unknown \"kind\"")
        }
        let key: [UInt8]
        if let t = obj["key"] as? String {
            key = Array(t.utf8)
        } else if let b = obj["key_base64"] as? String, let d = Data(base64Encoded: b) {
            key = Array(d)
        } else {
            throw SlotdiffError(.corruptInput, "no \"key\" or \"key_base64\"")
        }
        func side(_ name: String) throws -> SideState? {
            guard let o = obj[name] as? [String: Any] else { return nil }
            guard let tn = o["type"] as? String, let t = ValueType(name: tn),
                let dh = o["digest"] as? String, let d = Hash128(hex: dh)
            else {
                throw SlotdiffError(.corruptInput, "bad \"\(name)\" object")
            }
            let e = (o["expire_ms"] as? NSNumber)?.int64Value
            return SideState(type: t, expireMs: e, digest: d)
        }
        self.init(
            kind: kind, db: (obj["db"] as? NSNumber)?.intValue ?? 0,
            slot: UInt16((obj["slot"] as? NSNumber)?.intValue ?? Int(HashSlot.slot(of: key))),
            key: key, source: try side("source"), target: try side("target"),
            side: (obj["side"] as? String).flatMap(Side.init(rawValue:)),
            origins: obj["origins"] as? [String], detail: try Self.detail(line))
        sourceDb = (obj["source_db"] as? NSNumber)?.intValue
    }

    private struct DetailOnly: Decodable { var detail: JSONValue? }

    /// The `detail` object, read as JSON values (numbers and booleans kept apart).
    static func detail(_ line: Substring) throws -> JSONValue? {
        guard line.contains("\"detail\":") else { return nil }
        do { return try JSONDecoder().decode(DetailOnly.self, from: Data(line.utf8)).detail } catch {
            throw SlotdiffError(.corruptInput, "bad \"detail\" object")
        }
    }
}
