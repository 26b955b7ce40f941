import Foundation
import RESP
import SlotdiffCore
import Testing

@testable import Keyspace

/// The cluster address map: entries from the option and from files, and how an announced node
/// is looked up in it.
@Suite struct ClusterAddressMapTests {
    @Test func filesAndEntriesMakeOneMap() throws {
        let file = TestFile.write("# announced=reachable\n\nNode-A.svc:6379 = 127.0.0.1:7001  # shard a\n[fe80::1]:6379=[::1]:7002\n")
        let map = try LiveOptions.clusterAddresses(["10.0.0.7:6379=127.0.0.1:7003"], files: [file]).get()
        #expect(map == ["node-a.svc:6379": "127.0.0.1:7001", "[fe80::1]:6379": "[::1]:7002", "10.0.0.7:6379": "127.0.0.1:7003"])

        var options = LiveOptions()
        options.clusterAddresses = map
        let announced = RedisEndpoint(host: "10.0.0.5", port: 6379)
        // By its IP nothing is mapped; by its hostname (an alias) it is.
        #expect(options.reachable(announced).host == "10.0.0.5")
        let mapped = options.reachable(announced, aliases: ["NODE-A.SVC"])
        #expect(mapped.host == "127.0.0.1" && mapped.port == 7001)
    }

    @Test func badLinesNameTheFileAndLine() throws {
        let file = TestFile.write("# nodes\na:1=b:2\na:1 b:2\n")
        guard case .failure(let e) = LiveOptions.clusterAddresses([], files: [file]) else {
            Issue.record("a bad line accepted")
            return
        }
        #expect(e.code == .usage && e.message.contains("\(file):3") && e.message.contains("ANNOUNCED=REACHABLE"), "\(e)")
        let twice = TestFile.write("a:1=b:2\n")
        guard case .failure(let t) = LiveOptions.clusterAddresses(["A:1=c:3"], files: [twice]) else {
            Issue.record("an address mapped twice accepted")
            return
        }
        #expect(t.message.contains("a:1 is mapped twice") && t.message.contains("\(twice):1"), "\(t)")
        guard case .failure(let missing) = LiveOptions.clusterAddresses([], files: ["/nonexistent/x.map"]) else {
            Issue.record("a missing file accepted")
            return
        }
        #expect(missing.message.contains("--cluster-address-map /nonexistent/x.map"), "\(missing)")
    }
}

enum TestFile {
    static func write(_ text: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("slotdiff-map-\(UUID().uuidString)").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }
}
