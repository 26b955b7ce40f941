import Foundation
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import SlotdiffCore

/// The watch's metrics, through swift-metrics into a Prometheus registry, served as text at
/// `/metrics`. Names follow the usual Redis-exporter style: a `slotdiff_` prefix, `_total` for
/// counters, `kind` and `addr` labels.
final class WatchMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let keysCompared: Metrics.Counter
    private let runs: Metrics.Counter
    private let differences: [DifferenceKind: Metrics.Counter]
    private let lastDifferences: [DifferenceKind: Metrics.Gauge]
    private let duration: Metrics.Gauge
    private let lastTime: Metrics.Gauge
    private let lastResult: Metrics.Gauge
    private let drifting: Metrics.Gauge
    /// Per endpoint, made when an endpoint first fails.
    private let errors = NIOLockedValueBox<[String: Metrics.Counter]>([:])

    init() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        keysCompared = Metrics.Counter(label: "slotdiff_keys_compared_total")
        runs = Metrics.Counter(label: "slotdiff_runs_total")
        duration = Metrics.Gauge(label: "slotdiff_last_run_duration_seconds")
        lastTime = Metrics.Gauge(label: "slotdiff_last_run_timestamp_seconds")
        lastResult = Metrics.Gauge(label: "slotdiff_last_run_result")
        drifting = Metrics.Gauge(label: "slotdiff_drifting_keys")
        differences = Dictionary(
            uniqueKeysWithValues: DifferenceKind.allCases.map {
                ($0, Metrics.Counter(label: "slotdiff_differences_total", dimensions: [("kind", $0.rawValue)]))
            })
        lastDifferences = Dictionary(
            uniqueKeysWithValues: DifferenceKind.allCases.map {
                ($0, Metrics.Gauge(label: "slotdiff_last_run_differences", dimensions: [("kind", $0.rawValue)]))
            })
    }

    /// A completed run. Result: 0 match, 1 differences.
    func record(_ s: Summary, drifting n: Int) {
        keysCompared.increment(by: s.counts.compared)
        runs.increment()
        for k in DifferenceKind.allCases {
            differences[k]?.increment(by: s.counts.differences[k] ?? 0)
            lastDifferences[k]?.record(s.counts.differences[k] ?? 0)
        }
        duration.record(s.seconds)
        lastTime.record(Date().timeIntervalSince1970)
        lastResult.record(Int(s.exitCode))
        drifting.record(n)
    }

    /// A run that could not be done (result 2), counted against the endpoint it names.
    /// A run that could not be done, counted against the server it names (`unknown` when the
    /// failure was not a server's, e.g. a file that could not be written).
    func recordFailure(_ error: SlotdiffError, seconds: Double) {
        runs.increment()
        duration.record(seconds)
        lastTime.record(Date().timeIntervalSince1970)
        lastResult.record(2)
        let addr = error.endpoint ?? "unknown"
        let c = errors.withLockedValue { errors -> Metrics.Counter in
            if let c = errors[addr] { return c }
            let c = Metrics.Counter(label: "slotdiff_errors_total", dimensions: [("addr", addr)])
            errors[addr] = c
            return c
        }
        c.increment()
    }

    /// Serves `/metrics` over HTTP on `port` until the process ends.
    func serve(host: String, port: Int) async throws -> Channel {
        let registry = self.registry
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                // Added on the channel's own event loop, so the handler never crosses threads.
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(registry: registry))
                }
            }
        return try await bootstrap.bind(host: host, port: port).get()
    }
}

final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let registry: PrometheusCollectorRegistry
    private var uri = "/"

    init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            uri = head.uri
        case .body:
            break
        case .end:
            let found = uri == "/metrics" || uri.hasPrefix("/metrics?")
            let body = found ? registry.emitToBuffer() : Array("not found: try /metrics\n".utf8)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain")
            headers.add(name: "Content-Length", value: "\(body.count)")
            headers.add(name: "Connection", value: "close")
            let head = HTTPResponseHead(version: .http1_1, status: found ? .ok : .notFound, headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
        }
    }
}
