import NIOCore
import NIOSSL

/// How to speak TLS to a server. Verification is on by default: the server's certificate
/// must chain to `caFile` (or the system's trust roots) and match the host name.
public struct TLSOptions: Sendable, Hashable {
    /// PEM file of CA certificates to trust instead of the system's.
    public var caFile: String?
    /// PEM client certificate (chain) and its key, for servers that require client certificates.
    public var certFile: String?
    public var keyFile: String?
    /// The name to send (SNI) and verify; defaults to the endpoint's host when that is a name.
    public var serverName: String?
    /// Accept any certificate: encryption without authentication. Off by default.
    public var insecure: Bool

    public init(
        caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil,
        serverName: String? = nil, insecure: Bool = false
    ) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.serverName = serverName
        self.insecure = insecure
    }
}

/// A TLS client context built once from `TLSOptions` (files read and checked here) and
/// shared by every connection that uses it.
public struct RedisTLS: Sendable {
    public let options: TLSOptions
    let context: NIOSSLContext

    public init(_ options: TLSOptions = TLSOptions()) throws(RedisError) {
        self.options = options
        var config = TLSConfiguration.makeClientConfiguration()
        config.certificateVerification = options.insecure ? .none : .fullVerification
        if let ca = options.caFile {
            config.trustRoots = .file(ca)
            // Load it here so a bad path is reported now, naming the file.
            do { _ = try NIOSSLCertificate.fromPEMFile(ca) } catch {
                throw RedisError(.tls, "cannot read the CA file \(ca): \(error)", underlying: error)
            }
        }
        switch (options.certFile, options.keyFile) {
        case (nil, nil):
            break
        case (let cert?, let key?):
            do {
                config.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
            } catch {
                throw RedisError(.tls, "cannot read the client certificate \(cert): \(error)", underlying: error)
            }
            do {
                config.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            } catch {
                throw RedisError(.tls, "cannot read the client key \(key): \(error)", underlying: error)
            }
        default:
            throw RedisError(.tls, "a client certificate needs both a certificate file and a key file")
        }
        do {
            context = try NIOSSLContext(configuration: config)
        } catch {
            throw RedisError(.tls, "cannot set up TLS: \(error)", underlying: error)
        }
    }

    /// The SNI / verification name for a host: the configured server name, else the host
    /// when it is a name (an IP address is verified against the certificate's IP entries).
    func serverName(for endpoint: RedisEndpoint) -> String? {
        if let name = options.serverName { return name }
        return endpoint.hostIsIPAddress ? nil : endpoint.host
    }

    func makeHandler(for endpoint: RedisEndpoint) throws -> NIOSSLClientHandler {
        try NIOSSLClientHandler(context: context, serverHostname: serverName(for: endpoint))
    }
}
