import SlotdiffCore

/// A logged key to repair: where it is on each side and what the check found.
public struct RepairKey: Sendable {
    /// The target's database (the log's `db`) and the source's (`source_db` under `--db-map`).
    public var db: Int
    public var sourceDb: Int
    public var key: [UInt8]
    public var kind: DifferenceKind
    /// The source's state as the check recorded it (for `ttl`: the value both sides held).
    public var logged: SideState?

    public init(db: Int, sourceDb: Int, key: [UInt8], kind: DifferenceKind, logged: SideState?) {
        self.db = db
        self.sourceDb = sourceDb
        self.key = key
        self.kind = kind
        self.logged = logged
    }
}

/// Turns source values, as a side reads them (`ValueSink`), into the commands that write them
/// on the target: DEL, then the type's own commands in bounded batches, never one command of
/// unbounded size. One value's elements pass through at a time, whatever its size.
final class RepairWriter: ValueSink {
    /// Most elements, argument bytes and arguments in one command (ElastiCache Serverless
    /// refuses more than 3,999 arguments).
    static let maxItems = 1000
    static let maxBytes = 1 << 20
    static let maxArguments = 3999

    let keys: [RepairKey]
    /// The script a key's commands go to.
    let script: (RepairKey) throws -> ScriptFile
    /// Keys whose values are read but not written (`ttl`: only the expiry is repaired).
    let expiryOnly: Set<Int>
    /// Keys the type commands cannot write (module values).
    private(set) var notWritable: [Int: String] = [:]
    private(set) var failure: Error?

    private var current: Int?
    private var file: ScriptFile?
    private var mark: (offset: Int64, commands: Int) = (0, 0)
    private var type = ValueType.string
    private var name: [UInt8] = []
    private var args: [[UInt8]] = []
    private var argBytes = 0
    private var fieldExpiries: [UInt64: [[UInt8]]] = [:]
    private var text: [UInt8] = []
    private var textWritten = false

    init(keys: [RepairKey], expiryOnly: Set<Int>, script: @escaping (RepairKey) throws -> ScriptFile) {
        self.keys = keys
        self.expiryOnly = expiryOnly
        self.script = script
    }

    private func attempt(_ body: () throws -> Void) {
        guard failure == nil else { return }
        do { try body() } catch { failure = error }
    }

    func begin(_ index: Int, _ type: ValueType) {
        attempt {
            if current == index {
                // Read again from its start: what was written of it goes.
                if let file { try file.cut(to: mark) }
            } else {
                try finishKey()
            }
            current = index
            file = nil
            self.type = type
            args = []
            argBytes = 0
            fieldExpiries = [:]
            text = []
            textWritten = false
            notWritable[index] = nil
            if expiryOnly.contains(index) { return }
            if type == .module {
                notWritable[index] = "a module value: only RESTORE of the source's DUMP payload could write it"
                return
            }
            let k = keys[index]
            let f = try script(k)
            mark = try f.beginKey(db: k.db)
            try f.command([Array("DEL".utf8), k.key])
            file = f
            name = Array(Self.command(for: type).utf8)
        }
    }

    static func command(for type: ValueType) -> String {
        switch type {
        case .string: "SET"
        case .list: "RPUSH"
        case .set: "SADD"
        case .zset: "ZADD"
        case .hash: "HSET"
        case .stream: "XADD"
        case .module: ""
        }
    }

    func stringPart(_ bytes: UnsafeRawBufferPointer) {
        guard file != nil else { return }
        // A string read whole (DUMP) comes in one part: it is cut here.
        var rest = bytes[...]
        while !rest.isEmpty {
            let n = min(rest.count, Self.maxBytes - text.count)
            text.append(contentsOf: rest.prefix(n))
            rest = rest.dropFirst(n)
            if text.count == Self.maxBytes { attempt { try writeText() } }
        }
    }

    /// A string goes in 1 MiB pieces: SET, then APPEND.
    private func writeText() throws {
        guard let file, let i = current else { return }
        try file.command([Array((textWritten ? "APPEND" : "SET").utf8), keys[i].key, text])
        textWritten = true
        text = []
    }

    func item(_ item: DecodedValue.Item) {
        guard let file, let i = current else { return }
        attempt {
            switch type {
            case .list, .set:
                add(item.parts[0])
            case .zset:
                add(Self.scoreText(item.fixed[0]))
                add(item.parts[0])
            case .hash:
                add(item.parts[0])
                add(item.parts[1])
                if let ms = item.fixed.first { fieldExpiries[ms, default: []].append(item.parts[0]) }
            case .stream:
                // One entry, one XADD: an entry cannot be split.
                var c = [name, keys[i].key, Array("\(item.fixed[0])-\(item.fixed[1])".utf8)]
                c += item.parts
                try file.command(c)
                return
            case .string, .module:
                return
            }
            if args.count >= Self.maxItems * (type == .list || type == .set ? 1 : 2) || argBytes >= Self.maxBytes
                || args.count + 4 > Self.maxArguments
            {
                try writeItems()
            }
        }
    }

    private func add(_ a: [UInt8]) {
        args.append(a)
        argBytes += a.count
    }

    private func writeItems() throws {
        guard let file, let i = current, !args.isEmpty else { return }
        let key = keys[i].key
        try file.command([name, key] + args)
        args = []
        argBytes = 0
        // Fields' own expiries, after the fields exist; grouped by time.
        for (ms, fields) in fieldExpiries.sorted(by: { $0.key < $1.key }) {
            try file.command(
                [Array("HPEXPIREAT".utf8), key, Array(String(ms).utf8), Array("FIELDS".utf8), Array(String(fields.count).utf8)] + fields)
        }
        fieldExpiries = [:]
    }

    /// Ends the key being written (the next `begin`, or the end of the read).
    func finishKey() throws {
        defer {
            current = nil
            file = nil
        }
        guard let file else { return }
        if type == .string {
            if !text.isEmpty || !textWritten { try writeText() }
        } else {
            try writeItems()
        }
        file.countKey()
    }

    /// Ends the read: the last key's commands written, and the first error, if any, thrown.
    func finish() throws {
        attempt { try finishKey() }
        if let failure { throw failure }
    }

    /// A score as ZADD reads it back to the same double: the shortest text that round-trips.
    static func scoreText(_ bits: UInt64) -> [UInt8] {
        let d = Double(bitPattern: bits)
        if d == .infinity { return Array("+inf".utf8) }
        if d == -.infinity { return Array("-inf".utf8) }
        return Array("\(d)".utf8)
    }
}
