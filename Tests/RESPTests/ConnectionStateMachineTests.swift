import NIOCore
import Testing

@testable import RESP

@Suite("connection state machine")
struct ConnectionStateMachineTests {
    let ep = "127.0.0.1:6379"

    @Test("replies complete batches in order")
    func ordering() {
        var m = ConnectionStateMachine<String>()
        guard case .write = m.write("a", expected: 2), case .write = m.write("b", expected: 1) else {
            Issue.record("write refused"); return
        }
        #expect(m.pendingCount == 2)
        guard case .wait = m.read(.integer(1), endpoint: ep) else { Issue.record("completed early"); return }
        guard case .succeed("a", let replies) = m.read(.error(RedisServerError("ERR x")), endpoint: ep) else {
            Issue.record("a not completed"); return
        }
        #expect(replies == [.integer(1), .error(RedisServerError("ERR x"))])
        guard case .succeed("b", let r2) = m.read(.null, endpoint: ep) else { Issue.record("b not completed"); return }
        #expect(r2 == [.null])
        #expect(m.pendingCount == 0)
    }

    @Test("pushes are not replies")
    func pushes() {
        var m = ConnectionStateMachine<Int>()
        _ = m.write(1, expected: 1)
        guard case .ignore = m.read(.push([.integer(0)]), endpoint: ep) else { Issue.record("push taken as reply"); return }
        guard case .succeed(1, _) = m.read(.integer(5), endpoint: ep) else { Issue.record("reply lost"); return }
        guard case .ignore = m.read(.push([]), endpoint: ep) else { Issue.record("idle push closed"); return }
        #expect(m.isActive)
    }

    @Test("a reply nobody asked for closes the connection")
    func unexpected() {
        var m = ConnectionStateMachine<Int>()
        guard case .close(let error, let failing) = m.read(.integer(1), endpoint: ep) else {
            Issue.record("accepted"); return
        }
        #expect(error.code == .protocolError)
        #expect(error.message.contains(ep))
        #expect(failing.isEmpty)
        #expect(!m.isActive)
    }

    @Test("closing fails everything waiting and every later write; the first error sticks")
    func close() {
        var m = ConnectionStateMachine<Int>()
        _ = m.write(1, expected: 3)
        _ = m.write(2, expected: 1)
        _ = m.read(.integer(0), endpoint: ep)
        let failed = m.close(RedisError(.requestTimeout, "timeout"))
        #expect(failed == [1, 2])
        #expect(m.close(RedisError(.connectionClosed, "closed")).isEmpty)
        guard case .fail(let e) = m.write(3, expected: 1) else { Issue.record("write after close"); return }
        #expect(e.code == .requestTimeout)
        guard case .ignore = m.read(.integer(1), endpoint: ep) else { Issue.record("read after close"); return }
    }
}
