import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A scripted RESP server on 127.0.0.1 for unit tests of the live read path: it answers the
/// handshake like a Redis 7.2 server (or the version given) and hands every other command to
/// `script`, recording each command it received. A reply is raw RESP, built with `Reply`.
final class FakeServer: Sendable {
    typealias Script = @Sendable (_ command: [String], _ connection: Int) -> Reply

    let port: Int
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let state: NIOLockedValueBox<State>

    struct State {
        var received: [[String]] = []
        var connections = 0
        var open: [Int: any Channel] = [:]
    }

    /// `handlesSelect`: SELECT and READONLY are answered OK without asking the script.
    init(version: String = "7.2.4", mode: String = "standalone", handlesSelect: Bool = true, script: @escaping Script) throws {
        let state = NIOLockedValueBox(State())
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.state = state
        self.group = group
        let hello = Reply.map([("server", .bulk("redis")), ("version", .bulk(version)), ("proto", .int(3)), ("mode", .bulk(mode))])
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                let id = state.withLockedValue { s -> Int in
                    s.connections += 1
                    s.open[s.connections] = child
                    return s.connections
                }
                return child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(ByteToMessageHandler(CommandDecoder()))
                    try child.pipeline.syncOperations.addHandler(
                        ScriptHandler(id: id) { command in
                            state.withLockedValue { $0.received.append(command) }
                            switch command.first?.uppercased() {
                            case "HELLO": return hello
                            case "CLIENT": return .ok
                            case "READONLY" where handlesSelect, "SELECT" where handlesSelect: return .ok
                            default: return script(command, id)
                            }
                        })
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = channel.localAddress!.port!
    }

    /// Every command received so far, in order (the handshake's included).
    var received: [[String]] { state.withLockedValue { $0.received } }

    /// Commands received whose name is `name`, but for the read-plan probe's (on its own key,
    /// `LiveNode.probe`), which `probes` holds.
    func received(_ name: String) -> [[String]] {
        received.filter { $0.first?.uppercased() == name && !$0.contains { $0.hasPrefix("slotdiff-probe-") } }
    }

    /// The read-plan probe's commands.
    var probes: [[String]] { received.filter { $0.contains { $0.hasPrefix("slotdiff-probe-") } } }

    /// Connections accepted so far.
    var connections: Int { state.withLockedValue { $0.connections } }

    /// Closes every open connection (as a server restart would).
    func dropConnections() {
        let open = state.withLockedValue { s -> [any Channel] in
            defer { s.open = [:] }
            return Array(s.open.values)
        }
        for c in open { c.close(promise: nil) }
    }

    func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// A RESP reply.
indirect enum Reply: Sendable {
    case simple(String)
    case error(String)
    case int(Int)
    case bulk(String)
    case bytes([UInt8])
    case null
    case array([Reply])
    case map([(String, Reply)])
    /// Closes the connection instead of answering.
    case hangUp
    /// Never answers, and keeps the connection open (a stopped or hung server).
    case silence

    static let ok = Reply.simple("OK")

    var encoded: [UInt8] {
        switch self {
        case .simple(let s): return Array("+\(s)\r\n".utf8)
        case .error(let s): return Array("-\(s)\r\n".utf8)
        case .int(let n): return Array(":\(n)\r\n".utf8)
        case .bulk(let s): return Reply.bytes(Array(s.utf8)).encoded
        case .bytes(let b): return Array("$\(b.count)\r\n".utf8) + b + Array("\r\n".utf8)
        case .null: return Array("$-1\r\n".utf8)
        case .array(let items): return Array("*\(items.count)\r\n".utf8) + items.flatMap(\.encoded)
        case .map(let pairs): return Array("%\(pairs.count)\r\n".utf8) + pairs.flatMap { Reply.bulk($0.0).encoded + $0.1.encoded }
        case .hangUp, .silence: return []
        }
    }
}

/// Commands as clients send them: arrays of bulk strings.
private struct CommandDecoder: ByteToMessageDecoder {
    typealias InboundOut = [String]

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        var b = buffer
        guard let header = b.readLine(), header.first == "*", let n = Int(header.dropFirst()) else { return .needMoreData }
        var command: [String] = []
        for _ in 0..<n {
            guard let len = b.readLine(), len.first == "$", let count = Int(len.dropFirst()),
                let bytes = b.readBytes(length: count), b.readBytes(length: 2) != nil
            else { return .needMoreData }
            command.append(String(decoding: bytes, as: UTF8.self))
        }
        buffer = b
        context.fireChannelRead(wrapInboundOut(command))
        return .continue
    }
}

private final class ScriptHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = [String]
    typealias OutboundOut = ByteBuffer
    let id: Int
    let answer: @Sendable ([String]) -> Reply

    init(id: Int, answer: @escaping @Sendable ([String]) -> Reply) {
        self.id = id
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = answer(unwrapInboundIn(data))
        if case .hangUp = reply {
            context.close(promise: nil)
            return
        }
        if case .silence = reply { return }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: reply.encoded)), promise: nil)
    }
}

extension ByteBuffer {
    fileprivate mutating func readLine() -> String? {
        guard let i = readableBytesView.firstIndex(of: UInt8(ascii: "\r")), i + 1 < writerIndex,
            getInteger(at: i + 1, as: UInt8.self) == UInt8(ascii: "\n")
        else { return nil }
        let line = readString(length: i - readerIndex)
        moveReaderIndex(forwardBy: 2)
        return line
    }
}
