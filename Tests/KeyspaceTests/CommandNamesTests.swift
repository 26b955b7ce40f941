import Foundation
import NIOConcurrencyHelpers
import RESP
import SlotdiffCore
import Testing

@testable import Keyspace

/// Commands renamed or disabled on a server (`--rename-command`) and the argument limit, on
/// scripted servers: what reaches the server is what it knows, and nothing wider than the limit.
@Suite struct CommandNamesTests {
    func options(_ names: [String: String]) -> LiveOptions {
        var o = LiveOptions()
        o.workers = 1
        o.reconnectAttempts = 2
        o.commandNames = CommandNames(names)
        return o
    }

    func side(_ server: FakeServer, _ options: LiveOptions) async throws -> LiveSide {
        try await LiveSide.open(endpoint: RedisEndpoint(host: "127.0.0.1", port: server.port), options: options)
    }

    static func unknown(_ c: [String]) -> Reply { .error("ERR unknown command '\(c[0])', with args beginning with: ") }

    /// SCAN and TYPE renamed, PEXPIRETIME disabled: the server is sent its own names, never
    /// the original ones, PTTL instead of PEXPIRETIME from the first batch, and the plan says why.
    @Test func renamedCommandsAreSentUnderTheServersNames() async throws {
        let server = try FakeServer(
            script: LiveReadTests.strings { c in
                switch c[0] {
                case "scan-4f": return .array([.bulk("0"), .array([.bulk("a"), .bulk("b")])])
                case "type-4f": return .simple("string")
                case "PTTL": return .int(-1)
                case "SCAN", "TYPE", "PEXPIRETIME": return Self.unknown(c)
                default: return nil
                }
            })
        defer { server.stop() }
        let s = try await side(server, options(["scan": "scan-4f", "TYPE": "type-4f", "PEXPIRETIME": ""]))
        defer { Task { await s.close() } }
        let (tables, _) = try await s.collect(filter: KeyFilter())
        #expect(tables.map(\.count).reduce(0, +) == 2)
        #expect(server.received("SCAN").isEmpty && server.received("TYPE").isEmpty && server.received("PEXPIRETIME").isEmpty)
        #expect(server.received("SCAN-4F").count == 1 && server.received("TYPE-4F").count == 2 && server.received("PTTL").count == 2)
        #expect(s.readPlan == "expiry by PTTL: PEXPIRETIME disabled (--rename-command PEXPIRETIME=)")
    }

    /// DUMP disabled: values are read by type from the start, and DUMP is never sent.
    @Test func disabledDumpIsNeverSent() async throws {
        let server = try FakeServer { c, _ in
            switch c[0].uppercased() {
            case "INFO": return LiveReadTests.keyspace
            case "SCAN": return .array([.bulk("0"), .array([.bulk("h1")])])
            case "PEXPIRETIME": return .int(-1)
            case "TYPE": return .simple("hash")
            case "HLEN": return .int(1)
            case "MEMORY": return .int(100)
            case "HSCAN": return .array([.bulk("0"), .array([.bulk("f"), .bulk("v")])])
            // The probe's other type reads, on a key that does not exist.
            case "STRLEN", "LLEN", "SCARD", "ZCARD", "XLEN": return .int(0)
            case "GETRANGE": return .bulk("")
            case "LRANGE", "XRANGE": return .array([])
            case "SSCAN", "ZSCAN": return .array([.bulk("0"), .array([])])
            default: return Self.unknown(c)
            }
        }
        defer { server.stop() }
        let s = try await side(server, options(["DUMP": ""]))
        defer { Task { await s.close() } }
        let (tables, _) = try await s.collect(filter: KeyFilter())
        #expect(tables.map(\.count).reduce(0, +) == 1)
        #expect(server.received("DUMP").isEmpty && server.received("HSCAN").count == 1)
        #expect(s.readPlan == "values by type reads: DUMP disabled (--rename-command DUMP=)")
    }

    /// A disabled command nothing can replace (TYPE): exit 2 naming it and the option, and
    /// the server never sees it.
    @Test func disabledTypeEndsTheCheckNamingIt() async throws {
        let server = try FakeServer(script: LiveReadTests.strings())
        defer { server.stop() }
        let s = try await side(server, options(["TYPE": ""]))
        defer { Task { await s.close() } }
        do {
            _ = try await s.collect(filter: KeyFilter())
            Issue.record("a check without TYPE went on")
        } catch let e as SlotdiffError {
            #expect(e.description.contains("TYPE refused") && e.description.contains("--rename-command TYPE="), "\(e)")
        }
        #expect(server.received("TYPE").isEmpty)
    }

    /// A hash read in chunks on a server with field TTLs whose one HSCAN reply holds 9,000
    /// fields (a listpack comes back whole): its field expiries are asked in commands of at
    /// most 3,999 arguments, in order, and no command the server gets is wider.
    @Test func noCommandIsWiderThanTheArgumentLimit() async throws {
        let fields = (0..<9000).flatMap { [Reply.bulk("f\($0)"), .bulk("v")] }
        let server = try FakeServer(version: "7.4.2") { c, _ in
            switch c[0].uppercased() {
            case "INFO": return LiveReadTests.keyspace
            case "SCAN": return .array([.bulk("0"), .array([.bulk("h")])])
            case "PEXPIRETIME": return .int(-1)
            case "TYPE": return .simple("hash")
            case "HLEN": return .int(9000)
            case "MEMORY": return .int(50_000_000)
            case "HSCAN": return .array([.bulk("0"), .array(fields)])
            case "HPEXPIRETIME":
                // The first field of each command gets an expiry, so the order is checked too.
                return .array((0..<(Int(c[3]) ?? 0)).map { $0 == 0 ? .int(4_000_000_000_000 + Int(c[4].dropFirst())!) : .int(-1) })
            default: return Self.unknown(c)
            }
        }
        defer { server.stop() }
        let s = try await side(server, options([:]))
        defer { Task { await s.close() } }
        let (tables, _) = try await s.collect(filter: KeyFilter())
        #expect(tables.map(\.count).reduce(0, +) == 1)
        let asked = server.received("HPEXPIRETIME")
        #expect(asked.count == 3 && asked.map { $0[4] } == ["f0", "f3995", "f7990"], "\(asked.map { $0.prefix(5) })")
        #expect(asked.flatMap { $0.dropFirst(4) } == (0..<9000).map { "f\($0)" })
        let widest = server.received.map(\.count).max() ?? 0
        #expect(widest <= RESPBatch.argumentLimit, "a command of \(widest) arguments was sent")
        for cmd in Keyspace.LiveNode.fieldExpiryCommands(key: "k", fields: (0..<20000).map { Array("f\($0)".utf8) }) {
            #expect(cmd.count <= RESPBatch.argumentLimit)
        }
    }

    /// A connection never sends a command wider than the limit, whoever built it.
    @Test func aCommandOverTheLimitIsNotSent() async throws {
        let server = try FakeServer(script: LiveReadTests.strings())
        defer { server.stop() }
        let c = try await RedisConnection.connect(to: RedisEndpoint(host: "127.0.0.1", port: server.port))
        defer { Task { await c.close() } }
        let wide: [RESPArg] = ["EXISTS"] + (0..<RESPBatch.argumentLimit).map { RESPArg("k\($0)") }
        do {
            _ = try await c.pipeline([["PING"], wide])
            Issue.record("a command of \(wide.count) arguments was sent")
        } catch {
            #expect(error.code == .tooManyArguments, "\(error)")
        }
        #expect(server.received("EXISTS").isEmpty)
    }

    @Test func optionEntriesAreReadPerSide() throws {
        let (source, target) = try LiveOptions.commandNames(["DUMP=d1", "source:SCAN=", "TARGET:type=t2", "config="]).get()
        #expect(source.renaming("dump") == "d1" && source.isDisabled("SCAN") && source.renaming("TYPE") == nil)
        #expect(target.renaming("DUMP") == "d1" && !target.isDisabled("SCAN") && target.renaming("type") == "t2")
        for bad in ["DUMP", "=x", "CLUSTER|SHARDS=x", "DUMP=a b", "both:DUMP=x", "DUMP=a,DUMP=b"] {
            let entries = bad.split(separator: ",").map(String.init)
            guard case .failure(let e) = LiveOptions.commandNames(entries) else {
                Issue.record("\(bad) accepted")
                continue
            }
            #expect(e.code == .usage && e.message.contains("--rename-command"), "\(e)")
        }
        guard case .failure(let twice) = LiveOptions.commandNames(["DUMP=x", "target:SCAN=x"]) else {
            Issue.record("two commands named x on the target accepted")
            return
        }
        #expect(twice.message.contains("both renamed to 'x' on the target"), "\(twice)")
    }
}
