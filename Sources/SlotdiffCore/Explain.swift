import Foundation

/// A key read again to explain a difference: absent, present with its state and value, or a
/// side that cannot read values again (why).
public enum ValueRead: Sendable, Equatable {
    case absent
    case present(SideState, DecodedValue)
    case unavailable(String)
}

/// What differs in a key, element by element: the `detail` object of a diff-log line. Pure
/// functions of the two values read again; the reading is the sides' (`KeyspaceSource.values`).
///
/// Element values are text when printable (valid UTF-8 without control characters), else
/// base64, each cut to `maxValueBytes` with the full length given; at most `maxElements`
/// elements are listed per key, with the totals.
public enum Explain {
    public static let maxElements = 100
    public static let maxValueBytes = 256
    /// List elements shown from the first differing index on.
    public static let listWindow = 5
    /// String bytes shown before the first differing offset, and in all.
    public static let stringBefore = 16, stringWindow = 64

    /// The detail of difference `d`, from the key read again on both sides. A key whose type
    /// or digest read again is not what the difference recorded changed since the check: it
    /// is marked so (`changed_since_check`), never explained with the newer value.
    public static func detail(for d: Difference, source: ValueRead, target: ValueRead) -> JSONValue {
        var why: [String] = []
        for case .unavailable(let w) in [source, target] where !why.contains(w) { why.append(w) }
        if !why.isEmpty { return .object(["unavailable": .string(why.joined(separator: "; "))]) }
        var changed: [JSONValue] = []
        func value(_ r: ValueRead, _ recorded: SideState?, _ side: String) -> DecodedValue? {
            guard case .present(let st, let v) = r, let recorded, st.type == recorded.type, st.digest == recorded.digest else {
                changed.append(.string(side))
                return nil
            }
            return v
        }
        let s = value(source, d.source, "source")
        let t = value(target, d.target, "target")
        guard let s, let t, changed.isEmpty else { return .object(["changed_since_check": .array(changed)]) }
        return d.kind == .type ? typeDetail(source: s, target: t) : detail(source: s, target: t)
    }

    /// Two values of other types: both types and sizes.
    public static func typeDetail(source s: DecodedValue, target t: DecodedValue) -> JSONValue {
        .object([
            "source_type": .string("\(s.type)"), "target_type": .string("\(t.type)"),
            "source_count": .int(s.count), "target_count": .int(t.count)
        ])
    }

    /// What differs between two values of the same type.
    public static func detail(source s: DecodedValue, target t: DecodedValue) -> JSONValue {
        guard s.type == t.type else { return typeDetail(source: s, target: t) }
        var o: [String: JSONValue] = ["type": .string("\(s.type)")]
        if s.type == .string {
            o["source_length"] = .int(s.count)
            o["target_length"] = .int(t.count)
        } else {
            o["source_count"] = .int(s.count)
            o["target_count"] = .int(t.count)
        }
        if s.tooLarge || t.tooLarge {
            // Memory stays bounded: past the capture's bound only the sizes are known.
            o["too_large"] = .bool(true)
            return .object(o)
        }
        switch s.type {
        case .string: string(s.string, t.string, &o)
        case .list: list(s.items, t.items, &o)
        case .set: set(s.items, t.items, &o)
        case .hash: hash(s.items, t.items, &o)
        case .zset: zset(s.items, t.items, &o)
        case .stream: stream(s, t, &o)
        case .module: o["opaque"] = .bool(true)
        }
        return .object(o)
    }

    // MARK: values

    /// Text when printable, else base64; cut to `maxValueBytes` with the full length given.
    public static func blob(_ b: [UInt8]) -> JSONValue {
        let text = printable(b)
        if b.count <= maxValueBytes, let text { return .string(text) }
        var cut = Array(b.prefix(maxValueBytes))
        if text != nil {
            // Cut at a character boundary: never in the middle of a UTF-8 sequence.
            while !cut.isEmpty && String(validating: cut, as: UTF8.self) == nil { cut.removeLast() }
            return .object(["text": .string(String(decoding: cut, as: UTF8.self)), "length": .int(b.count)])
        }
        return .object(["base64": .string(Data(cut).base64EncodedString()), "length": .int(b.count)])
    }

    static func printable(_ b: [UInt8]) -> String? {
        guard let t = String(validating: b, as: UTF8.self),
            !t.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else { return nil }
        return t
    }

    static func score(_ bits: UInt64) -> JSONValue {
        let d = Double(bitPattern: bits)
        if d.isFinite { return .number(d) }
        return .string(d.isNaN ? "nan" : d > 0 ? "inf" : "-inf")
    }

    static func id(_ ms: UInt64, _ seq: UInt64) -> JSONValue { .string("\(ms)-\(seq)") }

    /// Fills lists in turn, at most `maxElements` entries across all of them, with their totals.
    struct Budget {
        var left = Explain.maxElements
        mutating func put(_ name: String, _ all: [JSONValue], _ o: inout [String: JSONValue]) {
            guard !all.isEmpty else { return }
            let shown = Array(all.prefix(max(0, left)))
            left -= shown.count
            o[name] = .array(shown)
            o[name + "_total"] = .int(all.count)
        }
    }

    // MARK: per type

    static func string(_ s: [UInt8], _ t: [UInt8], _ o: inout [String: JSONValue]) {
        var i = 0
        let n = min(s.count, t.count)
        while i < n && s[i] == t[i] { i += 1 }
        if i == s.count && i == t.count { return }
        let start = max(0, i - stringBefore)
        o["offset"] = .int(i)
        o["window_start"] = .int(start)
        o["source"] = blob(Array(s[min(start, s.count)..<min(s.count, start + stringWindow)]))
        o["target"] = blob(Array(t[min(start, t.count)..<min(t.count, start + stringWindow)]))
    }

    static func list(_ s: [DecodedValue.Item], _ t: [DecodedValue.Item], _ o: inout [String: JSONValue]) {
        var i = 0
        let n = min(s.count, t.count)
        while i < n && s[i].parts == t[i].parts { i += 1 }
        if i == s.count && i == t.count { return }
        o["index"] = .int(i)
        func window(_ a: [DecodedValue.Item]) -> JSONValue {
            .array(a[min(i, a.count)..<min(a.count, i + listWindow)].map { blob($0.parts.first ?? []) })
        }
        o["source"] = window(s)
        o["target"] = window(t)
    }

    static func set(_ s: [DecodedValue.Item], _ t: [DecodedValue.Item], _ o: inout [String: JSONValue]) {
        let a = Set(s.map { $0.parts.first ?? [] }), b = Set(t.map { $0.parts.first ?? [] })
        var budget = Budget()
        budget.put("missing", a.subtracting(b).sorted(by: less).map(blob), &o)
        budget.put("extra", b.subtracting(a).sorted(by: less).map(blob), &o)
    }

    static func less(_ a: [UInt8], _ b: [UInt8]) -> Bool { a.lexicographicallyPrecedes(b) }

    /// Items keyed by their first part (a hash field, a zset member).
    static func keyed(_ items: [DecodedValue.Item]) -> [[UInt8]: DecodedValue.Item] {
        var m: [[UInt8]: DecodedValue.Item] = [:]
        m.reserveCapacity(items.count)
        for it in items { m[it.parts.first ?? []] = it }
        return m
    }

    static func hash(_ s: [DecodedValue.Item], _ t: [DecodedValue.Item], _ o: inout [String: JSONValue]) {
        let a = keyed(s), b = keyed(t)
        func expiry(_ it: DecodedValue.Item) -> JSONValue { it.fixed.first.map { .int(Int(Int64(bitPattern: $0))) } ?? .null }
        func entry(_ f: [UInt8], _ it: DecodedValue.Item) -> JSONValue {
            var e: [String: JSONValue] = ["field": blob(f), "value": blob(it.parts.count > 1 ? it.parts[1] : [])]
            if !it.fixed.isEmpty { e["expire_ms"] = expiry(it) }
            return .object(e)
        }
        var changed: [JSONValue] = []
        for f in a.keys.sorted(by: less) {
            guard let x = a[f], let y = b[f], x != y else { continue }
            var e: [String: JSONValue] = [
                "field": blob(f), "source": blob(x.parts.count > 1 ? x.parts[1] : []),
                "target": blob(y.parts.count > 1 ? y.parts[1] : [])
            ]
            if x.fixed != y.fixed {
                e["source_expire_ms"] = expiry(x)
                e["target_expire_ms"] = expiry(y)
            }
            changed.append(.object(e))
        }
        var budget = Budget()
        budget.put("changed", changed, &o)
        budget.put("missing", a.keys.filter { b[$0] == nil }.sorted(by: less).map { entry($0, a[$0]!) }, &o)
        budget.put("extra", b.keys.filter { a[$0] == nil }.sorted(by: less).map { entry($0, b[$0]!) }, &o)
    }

    static func zset(_ s: [DecodedValue.Item], _ t: [DecodedValue.Item], _ o: inout [String: JSONValue]) {
        let a = keyed(s), b = keyed(t)
        func sc(_ it: DecodedValue.Item) -> JSONValue { score(it.fixed.first ?? 0) }
        var changed: [JSONValue] = []
        for m in a.keys.sorted(by: less) {
            guard let x = a[m], let y = b[m], x.fixed != y.fixed else { continue }
            changed.append(.object(["member": blob(m), "source": sc(x), "target": sc(y)]))
        }
        var budget = Budget()
        budget.put("changed", changed, &o)
        budget.put("missing", a.keys.filter { b[$0] == nil }.sorted(by: less).map { .object(["member": blob($0), "score": sc(a[$0]!)]) }, &o)
        budget.put("extra", b.keys.filter { a[$0] == nil }.sorted(by: less).map { .object(["member": blob($0), "score": sc(b[$0]!)]) }, &o)
    }

    static func stream(_ s: DecodedValue, _ t: DecodedValue, _ o: inout [String: JSONValue]) {
        func entries(_ v: DecodedValue) -> [StreamKey: [[UInt8]]] {
            var m: [StreamKey: [[UInt8]]] = [:]
            for it in v.items where it.fixed.count >= 2 { m[StreamKey(ms: it.fixed[0], seq: it.fixed[1])] = it.parts }
            return m
        }
        let a = entries(s), b = entries(t)
        var changed: [JSONValue] = []
        for k in a.keys.sorted() {
            guard let x = a[k], let y = b[k], x != y else { continue }
            changed.append(
                .object([
                    "id": id(k.ms, k.seq), "source": .array(x.map(blob)), "target": .array(y.map(blob)),
                    "fields": .array(fieldChanges(x, y))
                ]))
        }
        var budget = Budget()
        budget.put("changed", changed, &o)
        budget.put("missing", a.keys.filter { b[$0] == nil }.sorted().map { id($0.ms, $0.seq) }, &o)
        budget.put("extra", b.keys.filter { a[$0] == nil }.sorted().map { id($0.ms, $0.seq) }, &o)
        if s.lastID?.ms != t.lastID?.ms || s.lastID?.seq != t.lastID?.seq {
            o["last_id"] = .object([
                "source": s.lastID.map { id($0.ms, $0.seq) } ?? .null,
                "target": t.lastID.map { id($0.ms, $0.seq) } ?? .null
            ])
        }
        var groups: [JSONValue] = []
        let ga = Dictionary(s.groups.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        let gb = Dictionary(t.groups.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        for name in Set(ga.keys).union(gb.keys).sorted(by: less) {
            guard let x = ga[name], let y = gb[name] else {
                groups.append(.object(["name": blob(name), "only": .string(ga[name] != nil ? "source" : "target")]))
                continue
            }
            guard x != y else { continue }
            var g: [String: JSONValue] = ["name": blob(name)]
            if x.lastMs != y.lastMs || x.lastSeq != y.lastSeq {
                g["last_delivered"] = .object(["source": id(x.lastMs, x.lastSeq), "target": id(y.lastMs, y.lastSeq)])
            }
            let pa = Dictionary(x.pending.map { (StreamKey(ms: $0.ms, seq: $0.seq), $0) }, uniquingKeysWith: { p, _ in p })
            let pb = Dictionary(y.pending.map { (StreamKey(ms: $0.ms, seq: $0.seq), $0) }, uniquingKeysWith: { p, _ in p })
            func pel(_ p: DecodedValue.Pending) -> JSONValue {
                .object(["id": id(p.ms, p.seq), "consumer": blob(p.consumer), "deliveries": .int(Int(p.deliveries))])
            }
            budget.put("pending_missing", pa.keys.filter { pb[$0] == nil }.sorted().map { pel(pa[$0]!) }, &g)
            budget.put("pending_extra", pb.keys.filter { pa[$0] == nil }.sorted().map { pel(pb[$0]!) }, &g)
            budget.put(
                "pending_changed",
                pa.keys.filter { pb[$0] != nil && pb[$0] != pa[$0] }.sorted().map {
                    .object(["id": id($0.ms, $0.seq), "source": pel(pa[$0]!), "target": pel(pb[$0]!)])
                }, &g)
            groups.append(.object(g))
        }
        if !groups.isEmpty { o["groups"] = .array(groups) }
    }

    /// The fields of two versions of a stream entry whose values differ (null: no such field).
    static func fieldChanges(_ x: [[UInt8]], _ y: [[UInt8]]) -> [JSONValue] {
        func pairs(_ a: [[UInt8]]) -> [([UInt8], [UInt8])] {
            stride(from: 0, to: a.count - 1, by: 2).map { (a[$0], a[$0 + 1]) }
        }
        let a = pairs(x), b = pairs(y)
        var names: [[UInt8]] = []
        for (f, _) in a + b where !names.contains(f) { names.append(f) }
        return names.compactMap { f in
            let v = a.first { $0.0 == f }?.1, w = b.first { $0.0 == f }?.1
            guard v != w else { return nil }
            return .object(["field": blob(f), "source": v.map(blob) ?? .null, "target": w.map(blob) ?? .null])
        }
    }

    /// Two lists read element by element in order (from spilled files): the first differing
    /// index and a window of both from there, without holding either list.
    public static func firstDifferentItem(
        source: () -> DecodedValue.Item?, target: () -> DecodedValue.Item?, _ o: inout [String: JSONValue]
    ) {
        var index = 0
        var a = source(), b = target()
        while let x = a, let y = b, x.parts == y.parts {
            index += 1
            a = source()
            b = target()
        }
        if a == nil && b == nil { return }
        func window(_ first: DecodedValue.Item?, _ next: () -> DecodedValue.Item?) -> JSONValue {
            var shown: [JSONValue] = []
            var it = first
            while let x = it, shown.count < listWindow {
                shown.append(blob(x.parts.first ?? []))
                if shown.count < listWindow { it = next() }
            }
            return .array(shown)
        }
        o["index"] = .int(index)
        o["source"] = window(a, source)
        o["target"] = window(b, target)
    }

    /// Two sets, hashes or sorted sets read back bucket by bucket (their elements partitioned
    /// by a hash of the member or field, the same on both sides): each pair of buckets diffed
    /// as a whole value would be, the lists joined within one budget and the totals added.
    public static func partitioned(
        _ type: ValueType, buckets: Int, read: (Int) -> ([DecodedValue.Item], [DecodedValue.Item]), _ o: inout [String: JSONValue]
    ) {
        let names = ["changed", "missing", "extra"]
        var lists: [String: [JSONValue]] = [:]
        var totals: [String: Int] = [:]
        for b in 0..<buckets {
            let (s, t) = read(b)
            var part: [String: JSONValue] = [:]
            switch type {
            case .set: set(s, t, &part)
            case .hash: hash(s, t, &part)
            case .zset: zset(s, t, &part)
            default: return
            }
            for n in names {
                guard let total = part[n + "_total"]?.intValue else { continue }
                totals[n, default: 0] += total
                let have = lists[n, default: []].count
                lists[n, default: []] += (part[n]?.arrayValue ?? []).prefix(max(0, maxElements - have))
            }
        }
        var left = maxElements
        for n in names {
            guard let total = totals[n] else { continue }
            let shown = Array((lists[n] ?? []).prefix(left))
            left -= shown.count
            o[n] = .array(shown)
            o[n + "_total"] = .int(total)
        }
    }

    struct StreamKey: Hashable, Comparable {
        var ms: UInt64
        var seq: UInt64
        static func < (a: StreamKey, b: StreamKey) -> Bool { (a.ms, a.seq) < (b.ms, b.seq) }
    }

    // MARK: for people

    /// One line per thing that differs, short (`field f3: "val17" → "changed"`), for the table
    /// and the page; at most `limit` lines.
    public static func lines(_ detail: JSONValue, limit: Int = 3) -> [String] {
        var out: [String] = []
        func show(_ v: JSONValue?) -> String {
            guard let v else { return "(none)" }
            switch v {
            case .string(let s): return "\"\(s.count > 40 ? String(s.prefix(39)) + "…" : s)\""
            case .number: return v.text
            case .null: return "none"
            case .array(let a): return "[" + a.prefix(3).map { show($0) }.joined(separator: ", ") + (a.count > 3 ? ", …" : "") + "]"
            case .object(let o):
                if let t = o["text"]?.stringValue { return "\"\(String(t.prefix(39)))…\" (\(o["length"]?.text ?? "?") bytes)" }
                if let b = o["base64"]?.stringValue { return "base64:\(b.prefix(24))… (\(o["length"]?.text ?? "?") bytes)" }
                return v.text
            case .bool(let b): return b ? "true" : "false"
            }
        }
        // A field or member name: as it is when it is plain text.
        func name(_ v: JSONValue?) -> String {
            if let t = v?.stringValue, !t.isEmpty, !t.contains(where: { $0 == " " || $0 == "\"" }) { return t }
            return show(v)
        }
        if let w = detail["unavailable"]?.stringValue { return ["not explained: \(w)"] }
        if let c = detail["changed_since_check"]?.arrayValue {
            return ["changed since the check on the \(c.compactMap(\.stringValue).joined(separator: " and ")); not explained"]
        }
        if let st = detail["source_type"]?.stringValue, let tt = detail["target_type"]?.stringValue {
            return ["\(st) (\(detail["source_count"]?.text ?? "?")) → \(tt) (\(detail["target_count"]?.text ?? "?"))"]
        }
        let type = detail["type"]?.stringValue ?? ""
        if detail["too_large"]?.boolValue == true {
            if type == "string" {
                return ["too large to explain byte by byte: length \(detail["source_length"]?.text ?? "?") → \(detail["target_length"]?.text ?? "?")"]
            }
            return ["too large to explain element by element: \(detail["source_count"]?.text ?? "?") → \(detail["target_count"]?.text ?? "?") elements"]
        }
        let (what, key) = type == "hash" ? ("field", "field") : type == "zset" ? ("member", "member") : type == "stream" ? ("entry", "id") : ("member", "")
        switch type {
        case "string":
            out.append(
                "length \(detail["source_length"]?.text ?? "?") → \(detail["target_length"]?.text ?? "?"), first difference at byte \(detail["offset"]?.text ?? "?"): "
                    + "\(show(detail["source"])) → \(show(detail["target"]))")
        case "list":
            out.append(
                "length \(detail["source_count"]?.text ?? "?") → \(detail["target_count"]?.text ?? "?"), first difference at index \(detail["index"]?.text ?? "?"): "
                    + "\(show(detail["source"]?[0])) → \(show(detail["target"]?[0]))")
        default:
            for c in detail["changed"]?.arrayValue ?? [] {
                if type == "stream" {
                    let fields = (c["fields"]?.arrayValue ?? []).map { "field \(name($0["field"])) \(show($0["source"])) → \(show($0["target"]))" }
                    out.append("entry \(name(c["id"])): " + (fields.isEmpty ? "\(show(c["source"])) → \(show(c["target"]))" : fields.joined(separator: ", ")))
                } else {
                    var l = "\(what) \(name(c[key])): \(show(c["source"])) → \(show(c["target"]))"
                    if c["source_expire_ms"] != nil { l += " (expiry \(show(c["source_expire_ms"])) → \(show(c["target_expire_ms"])))" }
                    out.append(l)
                }
            }
            for (list, side) in [("missing", "only on the source"), ("extra", "only on the target")] {
                for m in detail[list]?.arrayValue ?? [] {
                    let label = type == "set" || type == "stream" ? name(m) : name(m[key])
                    var l = "\(what) \(label) \(side)"
                    if type == "hash" { l += ": \(show(m["value"]))" }
                    if type == "zset" { l += " (score \(show(m["score"])))" }
                    out.append(l)
                }
            }
            if let l = detail["last_id"] { out.append("last ID \(name(l["source"])) → \(name(l["target"]))") }
            for g in detail["groups"]?.arrayValue ?? [] {
                let group = "group \(name(g["name"]))"
                if let only = g["only"]?.stringValue { out.append("\(group) only on the \(only)"); continue }
                if let ld = g["last_delivered"] { out.append("\(group): last delivered \(name(ld["source"])) → \(name(ld["target"]))") }
                for (k, what) in [
                    ("pending_missing", "only on the source"), ("pending_extra", "only on the target"), ("pending_changed", "delivered otherwise")
                ] {
                    if let n = g[k + "_total"]?.intValue { out.append("\(group): \(n) pending entr\(n == 1 ? "y" : "ies") \(what)") }
                }
            }
        }
        var total = 0
        for k in ["changed", "missing", "extra"] { total += detail[k + "_total"]?.intValue ?? 0 }
        let all = max(out.count, total)
        if out.count > limit { out = Array(out.prefix(limit)) }
        if all > out.count { out.append("… \(all - out.count) more") }
        return out
    }
}
