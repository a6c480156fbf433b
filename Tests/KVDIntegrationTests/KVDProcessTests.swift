import Foundation
import KVDTestSupport
import Testing

/// The harness's `KVDProcess`: every kvd a test starts listens on a port of its own.
@Suite("test support: KVDProcess")
struct KVDProcessTests {
    @Test func aConfigWithoutHTTPSectionGetsOne() {
        #expect(KVDProcess.withEphemeralPort("[redis]\nport = 6390\n") == "[http]\nport = 0\n[redis]\nport = 6390\n")
        #expect(KVDProcess.withEphemeralPort("") == "[http]\nport = 0\n")
    }

    @Test func anHTTPSectionWithoutPortGetsPort0InsideIt() {
        #expect(KVDProcess.withEphemeralPort("[http]\nthreads = 1\n[redis]\nport = 6390\n")
            == "[http]\nport = 0\nthreads = 1\n[redis]\nport = 6390\n")
        #expect(KVDProcess.withEphemeralPort("[redis]\nport = 6390\n  [http]  \nthreads = 1")
            == "[redis]\nport = 6390\n  [http]  \nport = 0\nthreads = 1")
        // A commented-out port sets nothing.
        #expect(KVDProcess.withEphemeralPort("[http]\n; port = 8080\n") == "[http]\nport = 0\n; port = 8080\n")
    }

    @Test func aPortTheConfigSetsIsKept() {
        for config in ["[http]\nport = 8123\n", "[http]\nthreads = 2\n  port=9\n", "[http]\nport: 0\n",
                       "[http]\nthreads = 1\n[redis]\nport = 6390\n[http]\nport = 8124\n"] {
            #expect(KVDProcess.withEphemeralPort(config) == config)
        }
    }

    @Test func kvdStartedWithAnHTTPSectionAndNoPortDoesNotBindTheDefault() throws {
        let kvd = try KVDProcess(config: "[http]\nthreads = 1\n")
        #expect(kvd.port != 8000)
        #expect(try kvd.get("/healthz").status == 200)
        #expect(try String(contentsOfFile: kvd.configPath, encoding: .utf8) == "[http]\nport = 0\nthreads = 1\n")
    }
}
