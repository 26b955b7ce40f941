import Foundation
import HashSlots
import NIOCore
import Testing

@testable import RESP

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite("against a real redis-server", .enabled(if: TestEnvironment.serversAvailable, Comment(rawValue: TestEnvironment.skipMessage)))
struct IntegrationTests {
    @Test("PING over RESP3 (HELLO 3) and RESP2")
    func ping() async throws {
        try await withRedisServer { server in
            let c3 = try await RedisConnection.connect(to: server.endpoint)
            defer { Task { await c3.close() } }
            #expect(c3.protocolVersion == 3)
            #expect(["redis", "valkey"].contains(c3.serverInfo["server"] ?? ""))
            #expect(c3.serverInfo["proto"] == "3")
            #expect(try await c3.send("PING") == .simpleString(ByteBuffer(string: "PONG")))
            let hello = try await c3.send("HELLO", "3")
            guard case .map = hello else { Issue.record("HELLO 3 did not answer a map: \(hello)"); return }
            #expect(hello["proto"]?.int == 3)

            var options = RedisConnectionOptions()
            options.preferRESP3 = false
            let c2 = try await RedisConnection.connect(to: server.endpoint, options: options)
            #expect(c2.protocolVersion == 2)
            #expect(try await c2.send("PING").string == "PONG")
            _ = try await c2.send("HSET", "h", "f", "v").throwIfError()
            // The same command answers a flat array in RESP2 and a map in RESP3.
            guard case .array = try await c2.send("HGETALL", "h") else { Issue.record("RESP2 HGETALL"); return }
            guard case .map = try await c3.send("HGETALL", "h") else { Issue.record("RESP3 HGETALL"); return }
            #expect(try await c2.send("HGETALL", "h")["f"]?.string == "v")
            await c2.close()
            #expect(!c2.isActive)
        }
    }

    @Test("binary keys and values round-trip, and DUMP payloads come back intact")
    func binaryValues() async throws {
        try await withRedisServer { server in
            let c = try await RedisConnection.connect(to: server.endpoint)
            let key: [UInt8] = [0, 0xFF, 13, 10, 0x7B, 0x7D] + bytes("key")
            // Random bytes: DUMP would LZF-compress a pattern.
            var rng = SystemRandomNumberGenerator()
            let value = (0..<300_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
            try await c.send("SET", RESPArg(key), RESPArg(value)).throwIfError()
            #expect(try await c.send("GET", RESPArg(key)).bytes == value)
            #expect(try await c.send("GET", "missing").isNull)

            let dump = try await c.send("DUMP", RESPArg(key)).throwIfError()
            let payload = try #require(dump.bytes)
            #expect(payload.count > value.count)
            // RESTORE verifies the payload's CRC64: it only accepts a byte-exact copy.
            try await c.send("RESTORE", "copy", 0, RESPArg(payload)).throwIfError()
            #expect(try await c.send("GET", "copy").bytes == value)
            var corrupt = payload
            corrupt[corrupt.count / 2] ^= 1
            let refused = try await c.send("RESTORE", "copy2", 0, RESPArg(corrupt))
            #expect(refused.serverError?.message.contains("checksum") == true)
            await c.close()
        }
    }

    @Test("10k pipelined commands: replies in order, one error reply does not fail the rest")
    func pipelining() async throws {
        try await withRedisServer { server in
            let c = try await RedisConnection.connect(to: server.endpoint)
            let n = 10_000
            let sets = (0..<n).map { i -> [RESPArg] in ["SET", RESPArg("k:\(i)"), RESPArg("v:\(i)")] }
            let ok = try await c.pipeline(sets)
            #expect(ok.count == n && ok.allSatisfy { $0.string == "OK" })

            var gets = (0..<n).map { i -> [RESPArg] in ["GET", RESPArg("k:\(i)")] }
            gets[5000] = ["INCR", "k:1"]  // not an integer: an error reply in the middle
            let replies = try await c.pipeline(gets)
            #expect(replies.count == n)
            for i in 0..<n where i != 5000 {
                if replies[i].string != "v:\(i)" { Issue.record("reply \(i) is \(replies[i])"); break }
            }
            #expect(replies[5000].serverError?.code == "ERR")
            #expect(throws: RedisError.self) { try replies[5000].throwIfError() }

            // Concurrent pipelines on one connection each get their own replies.
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for t in 0..<8 {
                    group.addTask {
                        let keys = (0..<500).map { ["GET", RESPArg("k:\(t * 500 + $0)")] as [RESPArg] }
                        let r = try await c.pipeline(keys)
                        return r.enumerated().allSatisfy { $0.element.string == "v:\(t * 500 + $0.offset)" }
                    }
                }
                for try await good in group { #expect(good) }
            }
            #expect(try await c.pipeline([]).isEmpty)
            await c.close()
        }
    }

    @Test("ACL user logs in with HELLO and with AUTH; a wrong password fails without showing it")
    func authentication() async throws {
        try await withRedisServer { server in
            let admin = try await RedisConnection.connect(to: server.endpoint)
            let password = "s3cret:p@ss/w%rd"
            try await admin.send("ACL", "SETUSER", "reader", "on", RESPArg(">" + password), "~*", "+@read", "+@connection", "+acl|whoami")
                .throwIfError()
            try await admin.send("SET", "shared", "1").throwIfError()

            let encoded = "s3cret%3Ap%40ss%2Fw%25rd"
            let good = try RedisEndpoint(url: "redis://reader:\(encoded)@127.0.0.1:\(server.port)")
            #expect(good.password == password)
            for resp3 in [true, false] {
                var options = RedisConnectionOptions()
                options.preferRESP3 = resp3
                let c = try await RedisConnection.connect(to: good, options: options)
                #expect(try await c.send("ACL", "WHOAMI").string == "reader")
                #expect(try await c.send("GET", "shared").string == "1")
                // A read-only user: writes are refused (the product never writes anyway).
                #expect(try await c.send("SET", "x", "1").serverError?.code == "NOPERM")
                await c.close()

                let wrongPassword = "not-the-Secret-42"
                do {
                    _ = try await RedisConnection.connect(to: good.withPassword(wrongPassword), options: options)
                    Issue.record("logged in with a wrong password")
                } catch let error as RedisError {
                    #expect(error.code == .authenticationFailed)
                    #expect(error.message.contains("authentication failed"))
                    #expect(error.message.contains("reader"))
                    #expect(error.message.contains("127.0.0.1:\(server.port)"))
                    let everything = "\(error) \(String(reflecting: error)) \(error.serverError?.message ?? "")"
                    #expect(!everything.contains(wrongPassword), "\(everything)")
                    #expect(!everything.contains(password))
                }
            }

            // A server that requires a password, given none.
            try await admin.send("CONFIG", "SET", "requirepass", "topsecret").throwIfError()
            do {
                _ = try await RedisConnection.connect(to: server.endpoint)
                Issue.record("connected without a password")
            } catch let error as RedisError {
                #expect(error.code == .authenticationFailed)
                #expect(error.message.contains("requires a password"))
            }
            let withDefault = server.endpoint.withPassword("topsecret")
            let d = try await RedisConnection.connect(to: withDefault)
            #expect(try await d.send("ACL", "WHOAMI").string == "default")
            await d.close()
            await admin.close()
        }
    }

    @Test("SELECT the endpoint's database")
    func database() async throws {
        try await withRedisServer { server in
            var e3 = server.endpoint
            e3.db = 3
            let c3 = try await RedisConnection.connect(to: e3)
            try await c3.send("SET", "where", "db3").throwIfError()
            let c0 = try await RedisConnection.connect(to: server.endpoint)
            #expect(try await c0.send("GET", "where").isNull)
            #expect(try await c3.send("GET", "where").string == "db3")
            e3.db = 99
            do {
                _ = try await RedisConnection.connect(to: e3)
                Issue.record("selected db 99")
            } catch let error as RedisError {
                #expect(error.message.contains("cannot select database 99"))
            }
            await c0.close()
            await c3.close()
        }
    }

    @Test("connection refused names the endpoint; retries give up after the attempts")
    func refused() async throws {
        let port = try freePort()
        let endpoint = RedisEndpoint(host: "127.0.0.1", port: port)
        do {
            _ = try await RedisConnection.connect(to: endpoint)
            Issue.record("connected to a closed port")
        } catch {
            #expect(error.code == .connectionRefused)
            #expect(error.description == "connection refused: 127.0.0.1:\(port)")
        }
        let tries = Counter()
        do {
            _ = try await RedisConnection.connect(
                to: endpoint, retrying: 3,
                backoff: RedisBackoff(initial: .milliseconds(10), jitter: 0),
                onRetry: { n, _ in tries.add(n) })
            Issue.record("connected to a closed port")
        } catch {
            #expect(error.code == .connectionRefused)
        }
        #expect(tries.values == [1, 2])
    }

    @Test("reconnect with backoff reaches a server that starts late")
    func reconnect() async throws {
        try await withRedisServer { server in
            // The server is up: the first attempt succeeds.
            let c = try await RedisConnection.connect(to: server.endpoint, retrying: 5)
            #expect(try await c.send("PING").string == "PONG")
            await c.close()
        }
    }

    @Test("hostname and IPv6 endpoints")
    func addresses() async throws {
        try await withRedisServer { server in
            let byName = try await RedisConnection.connect(to: RedisEndpoint(host: "localhost", port: server.port))
            #expect(try await byName.send("PING").string == "PONG")
            await byName.close()
            let ipv6Loopback =
                (try? String(contentsOfFile: "/proc/net/if_inet6", encoding: .utf8))?
                .contains("00000000000000000000000000000001") ?? false
            if ipv6Loopback, server.log().contains("::1") == false || true {
                let v6 = try RedisEndpoint(url: "redis://[::1]:\(server.port)")
                do {
                    let c = try await RedisConnection.connect(to: v6)
                    #expect(try await c.send("PING").string == "PONG")
                    await c.close()
                } catch let error as RedisError {
                    // The server binds ::1 optionally (-::1); refused means it could not.
                    #expect(error.code == .connectionRefused, "\(error)")
                    #expect(error.description.contains("[::1]:\(server.port)"))
                }
            }
        }
    }

    @Test("a request that outlives its time limit fails and closes the connection")
    func requestTimeout() async throws {
        try await withRedisServer { server in
            let c = try await RedisConnection.connect(to: server.endpoint)
            let start = ContinuousClock.now
            do {
                _ = try await c.send("BLPOP", "empty-list", "5", timeout: .milliseconds(200))
                Issue.record("BLPOP returned")
            } catch let error as RedisError {
                #expect(error.code == .requestTimeout)
                #expect(error.message.contains("127.0.0.1:\(server.port)"))
            }
            #expect(ContinuousClock.now - start < .seconds(3))
            do {
                _ = try await c.send("PING")
                Issue.record("connection still used after a timeout")
            } catch let error as RedisError {
                #expect(error.code == .requestTimeout || error.code == .connectionClosed)
            }
        }
    }

    @Test("the server closing the connection fails waiting requests")
    func serverCloses() async throws {
        try await withRedisServer { server in
            let c = try await RedisConnection.connect(to: server.endpoint)
            let killer = try await RedisConnection.connect(to: server.endpoint)
            let id = try #require(try await c.send("CLIENT", "ID").int)
            async let blocked = c.send("BLPOP", "nothing", "10")
            try await Task.sleep(for: .milliseconds(100))
            try await killer.send("CLIENT", "KILL", "ID", RESPArg(id)).throwIfError()
            do {
                _ = try await blocked
                Issue.record("BLPOP survived CLIENT KILL")
            } catch let error as RedisError {
                #expect(error.code == .connectionClosed)
                #expect(error.message.contains("127.0.0.1:\(server.port)"))
            }
            await killer.close()
        }
    }

    @Test("cluster: CLUSTER SHARDS and CLUSTER SLOTS of two real nodes, MOVED parsed")
    func cluster() async throws {
        try await withRedisServer(cluster: true) { a in
            try await withRedisServer(cluster: true) { b in
                let ca = try await RedisConnection.connect(to: a.endpoint)
                let cb = try await RedisConnection.connect(to: b.endpoint)
                try await ca.send("CLUSTER", "ADDSLOTSRANGE", "0", "8191").throwIfError()
                try await cb.send("CLUSTER", "ADDSLOTSRANGE", "8192", "16383").throwIfError()
                try await ca.send("CLUSTER", "MEET", "127.0.0.1", RESPArg(b.port)).throwIfError()
                // Wait (bounded) for gossip to tell each node about the other's slots, and for
                // the cluster to accept queries (a new master waits about 2 s for that).
                var topology = try await ClusterTopology.discover(using: ca)
                for _ in 0..<300 {
                    let info = try await ca.send("CLUSTER", "INFO").string ?? ""
                    if topology.shards.count == 2, topology.coversAllSlots, info.contains("cluster_state:ok") { break }
                    try await Task.sleep(for: .milliseconds(50))
                    topology = try await ClusterTopology.discover(using: ca)
                }
                #expect(topology.coversAllSlots)
                #expect(topology.shard(forKey: bytes("foo"))?.primary.port == b.port)  // 12182
                #expect(topology.shard(forKey: bytes("bar"))?.primary.port == a.port)  // 5061
                #expect(topology.shard(for: HashSlot(8191)!)?.primary.endpoint(from: a.endpoint)?.port == a.port)

                let slots = try ClusterTopology(clusterSlots: try await ca.send("CLUSTER", "SLOTS").throwIfError())
                #expect(slots.shards.count == 2)
                #expect(slots.shard(forKey: bytes("foo"))?.primary.port == b.port)

                var resp2 = RedisConnectionOptions()
                resp2.preferRESP3 = false
                let c2 = try await RedisConnection.connect(to: a.endpoint, options: resp2)
                let shards2 = try ClusterTopology(clusterShards: try await c2.send("CLUSTER", "SHARDS"))
                #expect(shards2.shards.map(\.slots) == topology.shards.map(\.slots))
                await c2.close()

                let moved = try await ca.send("GET", "foo")
                let redirect = try #require(moved.serverError?.redirection, "\(moved)")
                #expect(redirect.kind == .moved)
                #expect(redirect.slot == HashSlot(12182)!)
                #expect(redirect.port == b.port)
                #expect(redirect.host == "127.0.0.1")
                await ca.close()
                await cb.close()
            }
        }
    }
}

/// Collects values from concurrent callbacks.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Int] = []
    func add(_ n: Int) { lock.withLock { list.append(n) } }
    var values: [Int] { lock.withLock { list } }
}

@Suite("TLS against a real redis-server", .enabled(if: TestEnvironment.tlsAvailable, Comment(rawValue: TestEnvironment.skipMessage)))
struct TLSIntegrationTests {
    @Test("verified with the CA, refused without it, accepted when insecure; client certificates")
    func tls() async throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let certs = try TestCertificates.make(in: dir)
        try await withRedisServer(tls: certs) { server in
            let endpoint = try RedisEndpoint(url: "rediss://127.0.0.1:\(server.port)")
            #expect(endpoint.tls)

            var options = RedisConnectionOptions()
            options.tls = try RedisTLS(TLSOptions(caFile: certs.caFile))
            let verified = try await RedisConnection.connect(to: endpoint, options: options)
            #expect(try await verified.send("PING").string == "PONG")
            try await verified.send("SET", "k", RESPArg([0, 1, 2, 255])).throwIfError()
            #expect(try await verified.send("GET", "k").bytes == [0, 1, 2, 255])
            await verified.close()

            // By name: the certificate holds DNS:localhost.
            let byName = try await RedisConnection.connect(
                to: RedisEndpoint(host: "localhost", port: server.port, tls: true),
                options: options)
            #expect(try await byName.send("PING").string == "PONG")
            await byName.close()

            // System trust roots only: our test CA is unknown.
            do {
                _ = try await RedisConnection.connect(to: endpoint)
                Issue.record("accepted an unknown CA")
            } catch let error as RedisError {
                #expect(error.code == .tls, "\(error)")
                #expect(error.message.contains("certificate"), "\(error)")
                #expect(error.message.contains("127.0.0.1:\(server.port)"))
            }

            var insecure = RedisConnectionOptions()
            insecure.tls = try RedisTLS(TLSOptions(insecure: true))
            let unverified = try await RedisConnection.connect(to: endpoint, options: insecure)
            #expect(try await unverified.send("PING").string == "PONG")

            // Plain text to a TLS port fails rather than hanging.
            var plain = endpoint
            plain.tls = false
            var quick = RedisConnectionOptions()
            quick.requestTimeout = .seconds(2)
            await #expect(throws: RedisError.self) { _ = try await RedisConnection.connect(to: plain, options: quick) }

            // A certificate for "localhost" only (no IP entries): the name is checked.
            let admin = try await RedisConnection.connect(to: endpoint, options: insecure)
            try await admin.send(
                "CONFIG", "SET", "tls-cert-file", RESPArg(certs.namedCert),
                "tls-key-file", RESPArg(certs.namedKey)
            ).throwIfError()
            await admin.close()
            do {
                _ = try await RedisConnection.connect(to: endpoint, options: options)
                Issue.record("accepted a certificate that does not name 127.0.0.1")
            } catch let error as RedisError {
                #expect(error.code == .tls, "\(error)")
                #expect(error.message.contains("does not match"), "\(error)")
            }
            var named = options
            named.tls = try RedisTLS(TLSOptions(caFile: certs.caFile, serverName: "localhost"))
            let byServerName = try await RedisConnection.connect(to: endpoint, options: named)
            #expect(try await byServerName.send("PING").string == "PONG")
            await byServerName.close()
            let byHost = try await RedisConnection.connect(
                to: RedisEndpoint(host: "localhost", port: server.port, tls: true),
                options: options)
            #expect(try await byHost.send("PING").string == "PONG")
            try await byHost.send(
                "CONFIG", "SET", "tls-cert-file", RESPArg(certs.serverCert),
                "tls-key-file", RESPArg(certs.serverKey)
            ).throwIfError()
            await byHost.close()

            // Now require client certificates.
            try await unverified.send("CONFIG", "SET", "tls-auth-clients", "yes").throwIfError()
            await unverified.close()
            var mutual = RedisConnectionOptions()
            mutual.tls = try RedisTLS(TLSOptions(caFile: certs.caFile, certFile: certs.clientCert, keyFile: certs.clientKey))
            let withCert = try await RedisConnection.connect(to: endpoint, options: mutual)
            #expect(try await withCert.send("PING").string == "PONG")
            await withCert.close()
            await #expect(throws: RedisError.self) { _ = try await RedisConnection.connect(to: endpoint, options: options) }
        }

        // Bad files are reported when the context is built, naming the file.
        do {
            _ = try RedisTLS(TLSOptions(caFile: "/nonexistent/ca.pem"))
            Issue.record("accepted a missing CA file")
        } catch {
            #expect(error.code == .tls && error.message.contains("/nonexistent/ca.pem"))
        }
        #expect(throws: RedisError.self) { try RedisTLS(TLSOptions(certFile: certs.clientCert)) }
    }
}
