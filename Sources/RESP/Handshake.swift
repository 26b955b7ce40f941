import NIOCore

/// What happens between the TCP/TLS connect and the first command: protocol choice,
/// login and database selection. Passwords go into commands only, never into messages.
enum Handshake {
    static func run(channel: any Channel, status: ChannelStatus, endpoint: RedisEndpoint, options: RedisConnectionOptions)
        async throws(RedisError) -> RedisConnection
    {
        let address = endpoint.address
        let bare = RedisConnection(
            channel: channel, status: status, endpoint: endpoint, protocolVersion: 2, serverInfo: [:],
            requestTimeout: options.requestTimeout ?? .seconds(30), commandNames: options.commandNames, ownsChannel: false)
        var version = 2
        var info: [String: String] = [:]
        var named = false

        if options.preferRESP3 {
            var hello: [RESPArg] = ["HELLO", "3"]
            if let password = endpoint.password {
                hello += ["AUTH", RESPArg(endpoint.username ?? "default"), RESPArg(password)]
            }
            if let name = options.clientName { hello += ["SETNAME", RESPArg(name)] }
            switch try await bare.send(hello) {
            case .error(let e) where isUnknownCommand(e) || e.code == "NOPROTO":
                break  // a server before Redis 6: stay on RESP2 and log in with AUTH
            case .error(let e):
                throw loginError(e, endpoint: endpoint)
            case let reply:
                version = 3
                named = options.clientName != nil
                for pair in reply.pairs ?? [] {
                    if let key = pair.key.string, let value = pair.value.string { info[key] = value }
                }
            }
        }

        if version == 2 {
            if let password = endpoint.password {
                var auth: [RESPArg] = ["AUTH", RESPArg(password)]
                if let user = endpoint.username { auth.insert(RESPArg(user), at: 1) }
                var reply = try await bare.send(auth)
                // Redis before 6 knows only AUTH <password>: fine when the user is the default one.
                if case .error(let e) = reply, e.message.lowercased().contains("wrong number of arguments"),
                    endpoint.username == "default"
                {
                    reply = try await bare.send(["AUTH", RESPArg(password)])
                }
                if case .error(let e) = reply { throw loginError(e, endpoint: endpoint) }
            }
            if let name = options.clientName, !named {
                _ = try await bare.send(["CLIENT", "SETNAME", RESPArg(name)])
            }
        }

        if let db = endpoint.db, db != 0 {
            if case .error(let e) = try await bare.send(["SELECT", RESPArg(db)]) {
                throw RedisError(
                    .serverError, "cannot select database \(db) on \(address): \(e.message)",
                    endpoint: address, serverError: e)
            }
        }
        return RedisConnection(
            channel: channel, status: status, endpoint: endpoint, protocolVersion: version, serverInfo: info,
            requestTimeout: options.requestTimeout, commandNames: options.commandNames)
    }

    static func isUnknownCommand(_ e: RedisServerError) -> Bool {
        e.message.lowercased().contains("unknown command")
    }

    /// Any error in answer to a login names the user and the server, quotes the server's
    /// text (which never echoes the password) and leaves the password out.
    static func loginError(_ e: RedisServerError, endpoint: RedisEndpoint) -> RedisError {
        let address = endpoint.address
        let user = endpoint.username ?? "default"
        if e.code == "NOAUTH" {
            return RedisError(
                .authenticationFailed,
                "authentication failed at \(address): the server requires a password and none was given (\(e.message))",
                endpoint: address, serverError: e)
        }
        return RedisError(
            .authenticationFailed, "authentication failed for user '\(user)' at \(address): \(e.message)",
            endpoint: address, serverError: e)
    }
}
