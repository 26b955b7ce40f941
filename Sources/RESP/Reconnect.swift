/// Waiting times between connection attempts: `initial`, then multiplied by `multiplier`
/// after each failure, never more than `maximum`, each randomly shortened by up to `jitter`
/// (0...1) so that many clients do not retry in step.
public struct RedisBackoff: Sendable, Hashable {
    public var initial: Duration
    public var multiplier: Double
    public var maximum: Duration
    public var jitter: Double

    public init(
        initial: Duration = .milliseconds(100), multiplier: Double = 2, maximum: Duration = .seconds(5),
        jitter: Double = 0.2
    ) {
        self.initial = initial
        self.multiplier = multiplier
        self.maximum = maximum
        self.jitter = jitter
    }

    /// The delay before retry number `retry` (0 = after the first failure), without jitter.
    public func delay(beforeRetry retry: Int) -> Duration {
        var d = initial
        for _ in 0..<retry {
            d = d * multiplier
            if d >= maximum { return maximum }
        }
        return min(d, maximum)
    }
}

extension RedisError {
    /// True for failures that may pass on their own: refused or dropped connections, time
    /// limits, unresolvable names, a server still loading its data set. Wrong passwords,
    /// TLS failures, bad endpoints and other error replies are not retried.
    public var isTransient: Bool {
        switch code {
        case .connectionRefused, .connectTimeout, .connectionFailed, .connectionClosed, .requestTimeout,
            .unresolvableHost:
            return true
        case .serverError:
            return serverError?.code == "LOADING" || serverError?.code == "BUSY" || serverError?.code == "TRYAGAIN"
        default:
            return false
        }
    }
}

extension RedisConnection {
    /// Connects, retrying transient failures (`RedisError.isTransient`) up to `attempts`
    /// tries in all, waiting per `backoff` between them. Throws the last error when every
    /// attempt failed, and at once on a failure that is not transient or on cancellation.
    /// `onRetry` is told of each failed attempt (number from 1) before the wait.
    public static func connect(
        to endpoint: RedisEndpoint, options: RedisConnectionOptions = RedisConnectionOptions(),
        retrying attempts: Int, backoff: RedisBackoff = RedisBackoff(),
        onRetry: (@Sendable (Int, RedisError) -> Void)? = nil
    ) async throws(RedisError)
        -> RedisConnection
    {
        precondition(attempts >= 1, "at least one attempt")
        var attempt = 1
        while true {
            do {
                return try await connect(to: endpoint, options: options)
            } catch {
                guard error.isTransient, attempt < attempts else { throw error }
                onRetry?(attempt, error)
                var delay = backoff.delay(beforeRetry: attempt - 1)
                if backoff.jitter > 0 { delay = delay * (1 - Double.random(in: 0...min(backoff.jitter, 1))) }
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    throw RedisError(.cancelled, "connecting to \(endpoint.address) cancelled", endpoint: endpoint.address)
                }
                attempt += 1
            }
        }
    }
}
