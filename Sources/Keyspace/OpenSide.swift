import RESP
import SlotdiffCore

/// Every kind of side, opened from what the operator wrote: dump files (paths, a directory,
/// `-`), a digest file (`.slotdiff`), or a server URL (a standalone server or any node of a
/// cluster). A new kind of side implements `KeyspaceSource` and is recognised here. `filter`
/// and `mode` are the check's: a digest file refuses a check it cannot answer.
public func openSide(
    _ side: CheckSession.Side, files: DumpFiles?, live: LiveOptions, filter: KeyFilter = KeyFilter(),
    mode: CompareMode = .digest
) async throws -> any KeyspaceSource {
    if let files { return DumpFileSource(files) }
    if DigestFile.isDigest(side.spec) { return try DigestFileSource(path: side.spec, filter: filter, mode: mode) }
    var endpoint = try RedisEndpoint(url: side.spec)
    if endpoint.password == nil, let password = side.password { endpoint = endpoint.withPassword(password) }
    var options = live
    options.commandNames = side.commandNames
    return try await LiveSide.open(endpoint: endpoint, options: options)
}

/// The dump files a side names, listed; nil when the side is a server or a digest file.
public func listFiles(_ spec: String) throws -> DumpFiles? {
    DumpFiles.looksLikeFiles(spec) && !DigestFile.isDigest(spec) ? try DumpFiles(spec: spec) : nil
}
