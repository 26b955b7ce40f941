import SlotdiffCore

/// Who wrote the bytes: the meaning of type bytes 22/23 and opcode 0xF3 depends on it.
public struct RDBFlavor: Sendable, Equatable {
    public var version: Int
    public var valkey: Bool

    public init(version: Int, valkey: Bool) {
        self.version = version
        self.valkey = valkey
    }
}

/// RDB value type bytes (rdb.h).
enum RDBType {
    static let string: UInt8 = 0, list: UInt8 = 1, set: UInt8 = 2, zset: UInt8 = 3, hash: UInt8 = 4, zset2: UInt8 = 5
    static let modulePreGA: UInt8 = 6, module2: UInt8 = 7
    static let hashZipmap: UInt8 = 9, listZiplist: UInt8 = 10, setIntset: UInt8 = 11, zsetZiplist: UInt8 = 12
    static let hashZiplist: UInt8 = 13, listQuicklist: UInt8 = 14, streamListpacks: UInt8 = 15
    static let hashListpack: UInt8 = 16, zsetListpack: UInt8 = 17, listQuicklist2: UInt8 = 18
    static let streamListpacks2: UInt8 = 19, setListpack: UInt8 = 20, streamListpacks3: UInt8 = 21
    static let hash22: UInt8 = 22, hash23: UInt8 = 23, hashMetadata: UInt8 = 24, hashListpackEx: UInt8 = 25
    static let streamListpacks4: UInt8 = 26

    /// The logical type of a value type byte, or nil when the byte is not a value type.
    static func logical(_ t: UInt8, _ f: RDBFlavor) -> ValueType? {
        switch t {
        case string: .string
        case list, listZiplist, listQuicklist, listQuicklist2: .list
        case set, setIntset, setListpack: .set
        case zset, zset2, zsetZiplist, zsetListpack: .zset
        case hash, hashZipmap, hashZiplist, hashListpack, hashMetadata, hashListpackEx, hash22: .hash
        case hash23: f.valkey ? nil : .hash  // Valkey's 23 (PATH_HASH) is unreleased
        case streamListpacks, streamListpacks2, streamListpacks3, streamListpacks4: .stream
        case modulePreGA, module2: .module
        default: nil
        }
    }
}

/// Decodes one RDB-encoded value (from a dump file or a DUMP payload) into the canonical
/// digest. The only value decoder: live and file checks both go through it.
public struct ValueDecoder {
    let input: RDBInput
    let flavor: RDBFlavor
    let d: CanonicalDigester

    public init(input: RDBInput, flavor: RDBFlavor, digester: CanonicalDigester) {
        self.input = input
        self.flavor = flavor
        d = digester
    }

    /// Decodes a value of type byte `t`; returns its logical type. `d.finish()` gives the digest.
    @discardableResult
    public func decode(type t: UInt8) throws -> ValueType {
        guard let vt = RDBType.logical(t, flavor) else {
            throw input.error(Self.unknownTypeMessage(t, flavor), at: input.offset - 1)
        }
        // Locals: the per-element loops below then retain neither reference per call.
        let d = self.d, input = self.input
        d.begin(vt)
        switch t {
        case RDBType.string:
            try input.stringValue(d, "string value")
        case RDBType.list:
            try plainItems("list length", width: 1) { _ in "list element" }
        case RDBType.set:
            try plainItems("set size", width: 1) { _ in "set member" }
        case RDBType.zset:
            let n = try input.count("sorted set size")
            var w = ItemWriter(d)
            for _ in 0..<n {
                w.beginItem()
                try input.componentString(&w, "sorted set member")
                w.score(try textScore())
                w.endItem()
            }
            w.finish()
        case RDBType.zset2:
            try plainItems("sorted set size", width: 1, scores: true) { _ in "sorted set member" }
        case RDBType.hash:
            try plainItems("hash size", width: 2) { $0 == 0 ? "hash field" : "hash value" }
        case RDBType.hashZipmap:
            var w = ItemWriter(d)
            try forEachZipmapPair(try blob("zipmap")) { k, v in
                w.beginItem(); w.component(k); w.component(v); w.endItem()
            }
            w.finish()
        case RDBType.listZiplist:
            try ziplistElements(try blob("ziplist"))
        case RDBType.setIntset:
            var w = ItemWriter(d)
            try forEachIntsetMember(try blob("intset")) {
                w.beginItem(); w.component(int: $0); w.endItem()
            }
            w.finish()
        case RDBType.zsetZiplist:
            try ziplistPairs(try blob("ziplist"), zset: true)
        case RDBType.hashZiplist:
            try ziplistPairs(try blob("ziplist"), zset: false)
        case RDBType.listQuicklist:
            let nodes = try input.count("quicklist node count")
            for _ in 0..<nodes { try ziplistElements(try blob("quicklist ziplist node")) }
        case RDBType.hashListpack:
            try listpackTuples(try blob("listpack"), width: 2, kind: .hash)
        case RDBType.zsetListpack:
            try listpackTuples(try blob("listpack"), width: 2, kind: .zset)
        case RDBType.setListpack:
            try listpackTuples(try blob("listpack"), width: 1, kind: .set)
        case RDBType.listQuicklist2:
            let nodes = try input.count("quicklist node count")
            for _ in 0..<nodes {
                let container = try input.count("quicklist node container")
                switch container {
                case 1:
                    var w = ItemWriter(d)
                    w.beginItem(); try input.componentString(&w, "quicklist plain node"); w.endItem()
                    w.finish()
                case 2: try listpackTuples(try blob("quicklist listpack node"), width: 1, kind: .list)
                default: throw input.error("quicklist node container \(container) is neither 1 (plain) nor 2 (packed)")
                }
            }
        case RDBType.hash22:
            if flavor.valkey { try valkeyHash2() } else { try hashWithFieldTTLs(minExpire: nil) }
        case RDBType.hash23:
            try listpackTuples(try blob("listpack"), width: 3, kind: .hashTTL(minExpire: 0))
        case RDBType.hashMetadata:
            let minExpire = Int64(bitPattern: try input.leU64("hash minimum expiry"))
            try hashWithFieldTTLs(minExpire: minExpire)
        case RDBType.hashListpackEx:
            _ = try input.leU64("hash minimum expiry")
            try listpackTuples(try blob("listpack"), width: 3, kind: .hashTTL(minExpire: 0))
        case RDBType.streamListpacks, RDBType.streamListpacks2, RDBType.streamListpacks3, RDBType.streamListpacks4:
            try stream(t)
        case RDBType.module2:
            try module()
        case RDBType.modulePreGA:
            throw input.error("module value of type 6 (Redis 4.0 release candidates) is not self-describing and cannot be read", at: input.offset - 1)
        default:
            throw input.error(Self.unknownTypeMessage(t, flavor), at: input.offset - 1)
        }
        return vt
    }

    static func unknownTypeMessage(_ t: UInt8, _ f: RDBFlavor) -> String {
        switch t {
        case 23 where f.valkey: "value type 23 (Valkey PATH_HASH, unreleased) is not supported"
        case 27: "value type 27 (Redis 8.8 stream with NACK zone, RDB 14) is not supported"
        case 28: "value type 28 (Redis 8.8 array, RDB 14) is not supported"
        case 29...33: "value type \(t) (Redis development hash templates / rate limiter) is not supported"
        default: "unknown value type \(t)"
        }
    }

    // MARK: helpers

    /// A string-form double (type 3 zsets): length byte, 253 NaN, 254 +inf, 255 -inf, or text.
    func textScore() throws -> Double {
        let at = input.offset
        let l = try input.u8("score length")
        switch l {
        case 253: return .nan
        case 254: return .infinity
        case 255: return -.infinity
        default:
            let b = try input.bytes(Int(l), "score text")
            guard let v = parseDouble(b) else { throw input.error("score is not a number", at: at) }
            return v
        }
    }

    /// A collection in the plain encoding: its count (`count` names it), then per item
    /// `width` strings (`what` names each) and, with `scores`, a binary score.
    func plainItems(_ count: String, width: Int, scores: Bool = false, _ what: (_ component: Int) -> String) throws {
        let n = try input.count(count)
        var w = ItemWriter(d)
        try input.stringItems(n, width: width, scores: scores, into: &w, what)
        w.finish()
    }

    func blob(_ kind: String) throws -> Blob {
        let (e, origin) = try input.stringInPlace(kind)
        return try Blob(e, at: origin, input: input, kind: kind)
    }

    func ziplistElements(_ b: Blob) throws {
        var w = ItemWriter(d)
        var c = try ZiplistCursor(b)
        var n = 0
        while let e = try c.next() {
            w.beginItem(); w.component(e); w.endItem()
            n += 1
        }
        w.finish()
        try c.checkCount(n)
    }

    func ziplistPairs(_ b: Blob, zset: Bool) throws {
        var w = ItemWriter(d)
        var c = try ZiplistCursor(b)
        var n = 0
        while let first = try c.next() {
            let second = try c.required(zset ? "a score" : "a hash value")
            w.beginItem()
            w.component(first)
            if zset { w.score(try score(second, b, c.at)) } else { w.component(second) }
            w.endItem()
            n += 2
        }
        w.finish()
        try c.checkCount(n)
    }

    func score(_ e: Element, _ b: Blob, _ at: Int) throws -> Double {
        switch e {
        case .int(let v): return Double(v)
        case .bytes(let t):
            guard let v = parseDouble(t) else { throw b.fail(at, "score is not a number") }
            return v
        }
    }

    enum TupleKind: Equatable { case list, set, hash, zset, hashTTL(minExpire: Int64) }

    func listpackTuples(_ b: Blob, width: Int, kind: TupleKind) throws {
        var w = ItemWriter(d)
        var c = try ListpackCursor(b)
        var n = 0
        while true {
            switch kind {
            case .list: n &+= c.orderedItems(into: &w)
            case .set, .hash, .zset:
                if let base = w.unorderedItemBuffer {
                    n &+= c.unorderedItems(width: width, scores: kind == .zset, base: base, into: &w)
                }
            case .hashTTL: break
            }
            // The end, or one item the general way (then the fast loop carries on).
            guard try c.more() else { break }
            w.beginItem()
            try c.write(into: &w, "an element")
            switch kind {
            case .list, .set: break
            case .hash: try c.write(into: &w, "a hash value")
            case .zset:
                let at = c.at
                w.score(try score(try c.required("a score"), b, at))
            case .hashTTL:
                try c.write(into: &w, "a hash value")
                let ttl = try c.requiredInt("a field expiry")
                if ttl != 0 { w.fixed(UInt64(bitPattern: ttl)) }
            }
            w.endItem()
            n += width
        }
        w.finish()
        try c.checkCount(n)
    }

    /// Hashes with per-field expiry in the Redis layouts: 22 (pre-GA, absolute ttl) and 24
    /// (ttl relative to the minimum expiry: absolute = ttl + minExpire - 1; 0 = none).
    func hashWithFieldTTLs(minExpire: Int64?) throws {
        let n = try input.count("hash size")
        var w = ItemWriter(d)
        for _ in 0..<n {
            let ttl = Int64(bitPattern: try input.length("field expiry").value)
            w.beginItem()
            try input.componentString(&w, "hash field")
            try input.componentString(&w, "hash value")
            if ttl != 0 { w.fixed(UInt64(bitPattern: minExpire.map { ttl + $0 - 1 } ?? ttl)) }
            w.endItem()
        }
        w.finish()
    }

    /// Valkey 9 HASH_2: (field, value, 8-byte expiry ms, -1 = none).
    func valkeyHash2() throws {
        let n = try input.count("hash size")
        var w = ItemWriter(d)
        for _ in 0..<n {
            w.beginItem()
            try input.componentString(&w, "hash field")
            try input.componentString(&w, "hash value")
            let exp = Int64(bitPattern: try input.leU64("field expiry"))
            if exp != -1 { w.fixed(UInt64(bitPattern: exp)) }
            w.endItem()
        }
        w.finish()
    }

    // MARK: modules

    /// Module values are opaque without the module: the id and every serialized element, in order.
    func module() throws {
        let id = try input.length("module id").value
        d.module(id: id)
        try walkModuleStream { tag, payload in
            var t = tag
            withUnsafeBytes(of: &t) { d.stringPart($0) }
            var len = UInt64(payload.count).littleEndian
            withUnsafeBytes(of: &len) { d.stringPart($0) }
            d.stringPart(payload)
        }
    }

    /// Walks a module-opcode stream up to its EOF opcode (also used for MODULE_AUX and key metadata).
    func walkModuleStream(_ each: (UInt8, UnsafeRawBufferPointer) -> Void) throws {
        while true {
            let at = input.offset
            let op = try input.length("module opcode").value
            switch op {
            case 0: return
            case 1, 2:
                var v = try input.length("module integer").value
                withUnsafeBytes(of: &v) { each(UInt8(op), $0) }
            case 3: each(3, try input.bytes(4, "module float"))
            case 4: each(4, try input.bytes(8, "module double"))
            case 5:
                var s: [UInt8] = []
                try input.stringBytes("module string", into: &s)
                s.withUnsafeBytes { each(5, $0) }
            default:
                throw input.error("unknown module opcode \(op)", at: at)
            }
        }
    }
}
