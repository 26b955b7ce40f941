import HashSlots
import NIOCore
import Testing

@testable import RESP

/// A reply as RESP text, parsed; lets tests write server output as the server sends it.
func reply(_ text: String) throws -> RESPValue {
    var b = ByteBuffer(string: text)
    return try #require(try RESPParser().parse(&b))
}

func bulk(_ s: String) -> String { "$\(s.utf8.count)\r\n\(s)\r\n" }

@Suite("cluster topology")
struct ClusterTopologyTests {
    /// One CLUSTER SHARDS node, as a RESP2 flat array or a RESP3 map.
    static func node(
        _ id: String, _ port: Int, _ role: String, health: String = "online", resp3: Bool,
        endpoint: String = "127.0.0.1", tlsPort: Int? = nil
    ) -> String {
        var fields = [
            bulk("id"), bulk(id), bulk("port"), ":\(port)\r\n", bulk("ip"), bulk("127.0.0.1"),
            bulk("endpoint"), bulk(endpoint), bulk("role"), bulk(role),
            bulk("replication-offset"), ":72156\r\n", bulk("health"), bulk(health)
        ]
        if let tlsPort { fields += [bulk("tls-port"), ":\(tlsPort)\r\n"] }
        return (resp3 ? "%\(fields.count / 2)\r\n" : "*\(fields.count)\r\n") + fields.joined()
    }

    static func shard(_ slots: [Int], _ nodes: [String], resp3: Bool) -> String {
        let slotList = "*\(slots.count)\r\n" + slots.map { ":\($0)\r\n" }.joined()
        let nodeList = "*\(nodes.count)\r\n" + nodes.joined()
        return (resp3 ? "%2\r\n" : "*4\r\n") + bulk("slots") + slotList + bulk("nodes") + nodeList
    }

    @Test("CLUSTER SHARDS in RESP2 and RESP3 shapes", arguments: [false, true])
    func shards(resp3: Bool) throws {
        let text =
            "*3\r\n"
            + Self.shard(
                [0, 5460, 10923, 10923],
                [
                    Self.node("a", 30001, "master", resp3: resp3, tlsPort: 31001),
                    Self.node("a2", 30004, "replica", resp3: resp3)
                ], resp3: resp3)
            + Self.shard(
                [5461, 10922],
                [
                    Self.node("b2", 30005, "replica", resp3: resp3),
                    Self.node("b", 30002, "master", resp3: resp3, endpoint: "?")
                ], resp3: resp3)
            + Self.shard(
                [10924, 16383],
                [
                    Self.node("c-old", 30003, "master", health: "fail", resp3: resp3),
                    Self.node("c", 30006, "master", resp3: resp3, endpoint: "node-c.example")
                ],
                resp3: resp3)
        let t = try ClusterTopology(clusterShards: try reply(text), askedHost: "seed")
        #expect(t.shards.count == 3)
        #expect(t.coversAllSlots)
        #expect(t.unassignedSlots.isEmpty)
        let a = t.shards[0]
        #expect(a.slots == [HashSlot(0)!...HashSlot(5460)!, HashSlot(10923)!...HashSlot(10923)!])
        #expect(a.primary.id == "a" && a.primary.port == 30001 && a.primary.tlsPort == 31001 && a.primary.isPrimary)
        #expect(a.replicas.map(\.id) == ["a2"])
        #expect(t.shards[1].primary.id == "b")
        #expect(t.shards[1].primary.host == "127.0.0.1", "'?' endpoint falls back to the IP")
        #expect(t.shards[2].primary.id == "c", "a failed primary is passed over")
        #expect(t.shards[2].primary.host == "node-c.example")
        #expect(t.shard(for: HashSlot(10923)!)?.primary.id == "a")
        #expect(t.shard(forKey: Array("foo".utf8))?.primary.id == "c")  // slot 12182
        #expect(t.shardIndex(for: HashSlot(5461)!) == 1)

        let template = try RedisEndpoint(url: "rediss://u:pw@seed:1/2")
        let e = try #require(a.primary.endpoint(from: template))
        #expect(e.port == 31001 && e.host == "127.0.0.1" && e.password == "pw" && e.db == 2)
        var plain = template
        plain.tls = false
        #expect(a.primary.endpoint(from: plain)?.port == 30001)
    }

    @Test("CLUSTER SLOTS: ranges of one primary are one shard")
    func slots() throws {
        func nodeText(_ host: String?, _ port: Int, _ id: String) -> String {
            "*4\r\n" + (host.map(bulk) ?? "$-1\r\n") + ":\(port)\r\n" + bulk(id) + "*0\r\n"
        }
        let text =
            "*3\r\n"
            + "*4\r\n:0\r\n:5460\r\n" + nodeText("127.0.0.1", 30001, "a") + nodeText("127.0.0.1", 30004, "a2")
            + "*3\r\n:5461\r\n:10922\r\n" + nodeText(nil, 30002, "b")
            + "*3\r\n:10923\r\n:10923\r\n" + nodeText("127.0.0.1", 30001, "a")
        let t = try ClusterTopology(clusterSlots: try reply(text), askedHost: "seed")
        #expect(t.shards.count == 2)
        #expect(t.shards[0].slots.count == 2)
        #expect(t.shards[0].replicas.map(\.port) == [30004])
        #expect(t.shards[1].primary.host == "seed", "unknown endpoint is the host asked")
        #expect(t.unassignedSlots == [HashSlot(10924)!...HashSlot(16383)!])
        #expect(!t.coversAllSlots)
        #expect(t.shard(for: HashSlot(16000)!) == nil)
    }

    /// A node announced by IP with a hostname (cluster-announce-hostname), or the other way
    /// round: both are known, so an address map may name it by either.
    @Test("every host a node is announced under is known")
    func aliases() throws {
        let hostnameField = bulk("hostname") + bulk("node-a.svc")
        var shardNode = Self.node("a", 30001, "master", resp3: false, endpoint: "10.0.0.5")
        shardNode = shardNode.replacingOccurrences(of: "*14\r\n", with: "*16\r\n") + hostnameField
        shardNode = shardNode.replacingOccurrences(of: bulk("127.0.0.1"), with: bulk("10.0.0.5"))
        let shards = try ClusterTopology(clusterShards: try reply("*1\r\n" + Self.shard([0, 16383], [shardNode], resp3: false)))
        #expect(shards.shards[0].primary.host == "10.0.0.5" && shards.shards[0].primary.aliases == ["node-a.svc"])

        // CLUSTER SLOTS (Redis 7+): the names the preferred endpoint is not, in a map after the id.
        let slots = try ClusterTopology(
            clusterSlots: try reply(
                "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n" + bulk("node-b.svc") + ":30002\r\n" + bulk("b") + "*2\r\n" + bulk("ip") + bulk("10.0.0.6")))
        #expect(slots.shards[0].primary.host == "node-b.svc" && slots.shards[0].primary.aliases == ["10.0.0.6"])
    }

    @Test("malformed topology replies are errors naming the command")
    func malformed() throws {
        #expect(throws: RedisError.self) { try ClusterTopology(clusterShards: .integer(1)) }
        #expect(throws: RedisError.self) { try ClusterTopology(clusterSlots: try reply("*1\r\n*3\r\n:5\r\n:1\r\n*0\r\n")) }
        do {
            _ = try ClusterTopology(clusterSlots: try reply("*1\r\n*3\r\n:0\r\n:99999\r\n*2\r\n+h\r\n:1\r\n"))
            Issue.record("accepted")
        } catch let error as RedisError {
            #expect(error.code == .unexpectedReply)
            #expect(error.message.contains("CLUSTER SLOTS"))
        }
    }
}
