import Foundation
import HashSlots
import Testing

@testable import RESP

@Suite("endpoints")
struct EndpointTests {
    @Test(
        "URL forms",
        arguments: [
            ("redis://localhost", RedisEndpoint(host: "localhost")),
            ("redis://10.0.0.5:6380", RedisEndpoint(host: "10.0.0.5", port: 6380)),
            ("redis://h:7000/3", RedisEndpoint(host: "h", port: 7000, db: 3)),
            ("redis://h/0", RedisEndpoint(host: "h", db: 0)),
            ("redis://h/", RedisEndpoint(host: "h")),
            ("rediss://cache.example.com:6380", RedisEndpoint(host: "cache.example.com", port: 6380, tls: true)),
            ("valkeys://v", RedisEndpoint(host: "v", tls: true)),
            ("redis://[::1]:6390/2", RedisEndpoint(host: "::1", port: 6390, db: 2)),
            ("redis://[fe80::1]", RedisEndpoint(host: "fe80::1")),
            ("redis://alice@h", RedisEndpoint(host: "h", username: "alice")),
            ("redis://alice:s3cret@h:1/4", RedisEndpoint(host: "h", port: 1, db: 4, username: "alice", password: "s3cret")),
            ("redis://:onlypass@h", RedisEndpoint(host: "h", password: "onlypass")),
            ("redis://us%40er:p%3Aw%2Fd%25@h", RedisEndpoint(host: "h", username: "us@er", password: "p:w/d%")),
            ("redis://u:p@ss@h", RedisEndpoint(host: "h", username: "u", password: "p@ss")),
            ("REDIS://H", RedisEndpoint(host: "H"))
        ])
    func parse(_ url: String, _ expected: RedisEndpoint) throws {
        #expect(try RedisEndpoint(url: url) == expected)
    }

    @Test(
        "bad URLs name the problem and never show the password",
        arguments: [
            ("http://h", "unknown scheme"),
            ("h:6379", "expected redis://"),
            ("redis://", "missing host"),
            ("redis://u:hunter2@h:0", "port must be"),
            ("redis://u:hunter2@h:99999", "port must be"),
            ("redis://u:hunter2@h:x", "port must be"),
            ("redis://u:hunter2@h/-1", "database"),
            ("redis://u:hunter2@h/a", "database"),
            ("redis://u:hunter2@[::1", "unclosed"),
            ("redis://u:hunter2%zz@h", "percent-encoding"),
            ("redis://u:hunter2@h?db=1", "query")
        ])
    func invalid(_ url: String, _ reason: String) {
        do {
            _ = try RedisEndpoint(url: url)
            Issue.record("accepted \(url)")
        } catch {
            #expect(error.code == .invalidEndpoint)
            #expect(error.message.contains(reason), "\(error.message)")
            #expect(!error.message.contains("hunter2"), "\(error.message)")
        }
    }

    @Test("no rendering shows the password")
    func noPassword() throws {
        let e = try RedisEndpoint(url: "rediss://alice:hunter2@[::1]:7000/5")
        #expect(e.description == "rediss://alice@[::1]:7000/5")
        #expect(e.address == "[::1]:7000")
        var dumped = ""
        dump(e, to: &dumped)
        for text in [e.description, e.debugDescription, "\(e)", String(reflecting: e), dumped, "\([e])"] {
            #expect(!text.contains("hunter2"), "\(text)")
        }
        #expect(e.debugDescription.contains("***"))
        #expect(RedisEndpoint.redact("redis://u:hunter2@h") == "redis://u:***@h")
    }

    @Test("password from the environment, policy left to the caller")
    func environment() throws {
        setenv("RESP_TEST_PASSWORD", "from-env", 1)
        defer { unsetenv("RESP_TEST_PASSWORD") }
        let e = try RedisEndpoint(url: "redis://bob@h")
        let withEnv = e.withPassword(RedisEndpoint.password(fromEnvironment: "RESP_TEST_PASSWORD"))
        #expect(withEnv.password == "from-env")
        #expect(withEnv.username == "bob")
        #expect(RedisEndpoint.password(fromEnvironment: "RESP_TEST_UNSET_VARIABLE") == nil)
        #expect(withEnv.withPassword(nil).password == "from-env")
    }

    @Test("IP literals are recognised (no SNI for them)")
    func ipLiterals() {
        #expect(RedisEndpoint(host: "127.0.0.1").hostIsIPAddress)
        #expect(RedisEndpoint(host: "::1").hostIsIPAddress)
        #expect(!RedisEndpoint(host: "localhost").hostIsIPAddress)
        #expect(!RedisEndpoint(host: "1.2.3.example").hostIsIPAddress)
    }
}

@Suite("redirections and errors")
struct RedirectionTests {
    @Test("MOVED and ASK parse into slot, host and port")
    func parse() {
        #expect(
            RedisRedirection(parsing: "MOVED 3999 127.0.0.1:6381")
                == RedisRedirection(kind: .moved, slot: HashSlot(3999)!, host: "127.0.0.1", port: 6381))
        #expect(
            RedisRedirection(parsing: "ASK 0 cache-1.example:7000")
                == RedisRedirection(kind: .ask, slot: HashSlot(0)!, host: "cache-1.example", port: 7000))
        #expect(RedisRedirection(parsing: "MOVED 16383 ::1:7001")?.host == "::1")
        #expect(RedisRedirection(parsing: "MOVED 5 :7001")?.host == "")
        #expect(RedisRedirection(parsing: "MOVED 16384 h:1") == nil)
        #expect(RedisRedirection(parsing: "MOVED x h:1") == nil)
        #expect(RedisRedirection(parsing: "ERR something") == nil)
        #expect(RedisRedirection(parsing: "MOVED 5 h") == nil)
    }

    @Test("an error reply carries its code and redirection; throwIfError raises it")
    func serverError() {
        let e = RedisServerError("MOVED 12182 10.0.0.2:6379")
        #expect(e.code == "MOVED")
        #expect(e.redirection?.slot == HashSlot(key: Array("foo".utf8)))
        do {
            try RESPValue.error(e).throwIfError()
            Issue.record("did not throw")
        } catch {
            #expect(error.code == .serverError)
            #expect(error.redirection?.port == 6379)
        }
        #expect((try? RESPValue.integer(1).throwIfError()) == .integer(1))
    }

    @Test("backoff grows to its maximum; only transient errors are retried")
    func backoff() {
        let b = RedisBackoff(initial: .milliseconds(100), multiplier: 2, maximum: .seconds(1), jitter: 0)
        #expect(b.delay(beforeRetry: 0) == .milliseconds(100))
        #expect(b.delay(beforeRetry: 2) == .milliseconds(400))
        #expect(b.delay(beforeRetry: 10) == .seconds(1))
        #expect(RedisError(.connectionRefused, "x").isTransient)
        #expect(!RedisError(.authenticationFailed, "x").isTransient)
        #expect(!RedisError(.tls, "x").isTransient)
        #expect(RedisError(serverError: RedisServerError("LOADING Redis is loading")).isTransient)
        #expect(!RedisError(serverError: RedisServerError("ERR DB index is out of range")).isTransient)
    }
}
