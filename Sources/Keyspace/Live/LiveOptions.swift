import Logging
import RESP
import SlotdiffCore

/// What a live check compares: `digest` the whole value, `length` only element counts,
/// `keys` only presence, type and expiry.
public enum CompareMode: String, Sendable, CaseIterable {
    case digest, length, keys
}

/// How a live side is read.
public struct LiveOptions: Sendable {
    /// Connections per side (each owns a share of the key batches).
    public var workers = 4
    /// Keys per pipelined batch.
    public var batch = 512
    /// SCAN COUNT hint.
    public var scanCount = 1000
    /// Most keys one CLUSTER GETKEYSINSLOT round trip may list (older cluster nodes); slots
    /// holding more are listed with SCAN.
    public var slotKeysLimit = 10_000
    /// Values larger than this (MEMORY USAGE, bytes) are read in chunks instead of one DUMP.
    public var bigKeyThreshold = 4 << 20
    /// Collections with more elements than this are read in chunks without asking their size;
    /// smaller ones are sized exactly (MEMORY USAGE … SAMPLES 0 walks every element, cheap
    /// at this count) and read with DUMP when under `bigKeyThreshold`.
    public var elementBound = 8192
    /// Elements (or bytes for strings) per chunked read.
    public var chunkSize = 1000
    /// Requests per second for this side across all workers; nil = no limit.
    public var qps: Int?
    public var readFromReplica = false
    public var mode: CompareMode = .digest
    public var tls: RedisTLS?
    /// Attempts to reconnect a lost connection before the check fails.
    public var reconnectAttempts = 5
    /// How long one reply may take. A node silent that long is sent the request once more on
    /// a new connection; silent again (the handshake included), the check fails naming it. So
    /// a stopped server ends a check within about twice this time, with warnings meanwhile.
    public var replyTimeout: Duration = .seconds(30)
    /// After how long without a reply the operator is told (again at each such interval).
    public var silenceWarning: Duration { min(.seconds(10), max(.seconds(1), replyTimeout / 2)) }
    /// Where reconnects, redirects, retries, fallbacks and restarted listings are told.
    public var logger = Logger(label: "slotdiff.live")

    public init() {}
}
