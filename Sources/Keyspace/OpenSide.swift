import RESP
import SlotdiffCore

/// Every kind of side, opened from what the operator wrote: dump files (paths, a directory,
/// `-`) or a server URL (a standalone server or any node of a cluster). A new kind of side
/// implements `KeyspaceSource` and is recognised here.
public func openSide(_ side: CheckSession.Side, files: DumpFiles?, live: LiveOptions) async throws -> any KeyspaceSource {
    if let files { return DumpFileSource(files) }
    var endpoint = try RedisEndpoint(url: side.spec)
    if endpoint.password == nil, let password = side.password { endpoint = endpoint.withPassword(password) }
    return try await LiveSide.open(endpoint: endpoint, options: live)
}

/// The dump files a side names, listed; nil when the side is a server.
func listFiles(_ spec: String) throws -> DumpFiles? {
    DumpFiles.looksLikeFiles(spec) ? try DumpFiles(spec: spec) : nil
}
