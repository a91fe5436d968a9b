// Peer-connection helpers shared by the call session (visitor and kiosk) and the officer's
// monitor: the server's relay wants one bundled transport and a complete offer (no trickle ICE).

/**
 * A peer connection to the server's media relay with the `ice_servers` from `welcome`.
 * `relayOnly`: through the TURN servers alone (`iceTransportPolicy: "relay"`): what a client
 * tries when a direct connection did not come up in time (a network that blocks UDP).
 */
export function relayPeerConnection(iceServers, { relayOnly = false } = {}) {
  if (!relayOnly) return new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
  return new RTCPeerConnection({
    iceServers: turnServersOf(iceServers),
    iceTransportPolicy: "relay",
    bundlePolicy: "max-bundle",
  });
}

function isTurnUrl(url) {
  return /^turns?:/i.test(String(url));
}

/** The TURN entries of `ice_servers`, with their `turn:`/`turns:` URLs only (no STUN). */
export function turnServersOf(iceServers) {
  const servers = [];
  for (const server of iceServers || []) {
    const urls = (Array.isArray(server.urls) ? server.urls : [server.urls]).filter(isTurnUrl);
    if (urls.length) servers.push({ ...server, urls });
  }
  return servers;
}

/** Wait until a peer connection has gathered all its ICE candidates (at most `ms`). */
export function iceGatheringDone(pc, ms = 5000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/** Drop `.local` (mDNS) candidates from an SDP: the server cannot resolve them. */
export function withoutMdnsCandidates(sdp) {
  return sdp
    .split("\r\n")
    .filter((line) => {
      if (!line.startsWith("a=candidate:")) return true;
      const address = line.split(" ")[4] || "";
      return !address.toLowerCase().endsWith(".local");
    })
    .join("\r\n");
}

/** The server's ice_servers as RTCIceServer objects (null username/credential left out). */
export function iceServersFrom(list) {
  return (list || []).map((entry) => {
    const server = { urls: entry.urls };
    if (entry.username) server.username = entry.username;
    if (entry.credential) server.credential = entry.credential;
    return server;
  });
}
