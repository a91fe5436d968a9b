// Watching a live visit: a receive-only peer connection with two video and two audio sections
// (per kind the first plays the visitor, the second the kiosk), offered over the officer socket
// with `monitor` once ICE gathering is complete; the server's `answer` is applied.

import { iceGatheringDone, relayPeerConnection } from "/assets/webrtc.js";

export class MonitorSession {
  /**
   * `socket`: the officer ReconnectingSocket. `videos`: {visitor: <video>, kiosk: <video>}.
   * `onEnded(reason)`: the peer connection failed or closed on its own.
   */
  constructor(socket, visitId, iceServers, videos, onEnded) {
    this.socket = socket;
    this.visitId = visitId;
    this.iceServers = iceServers || [];
    this.videos = videos;
    this.onEnded = onEnded || (() => {});
    this.pc = null;
    this.streams = { visitor: new MediaStream(), kiosk: new MediaStream() };
    this.stopped = false;
  }

  async start() {
    const pc = relayPeerConnection(this.iceServers);
    this.pc = pc;
    const sides = [];
    for (const kind of ["video", "audio"]) {
      for (const side of ["visitor", "kiosk"]) {
        const transceiver = pc.addTransceiver(kind, { direction: "recvonly" });
        sides.push([transceiver, side]);
      }
    }
    for (const [transceiver, side] of sides) {
      this.streams[side].addTrack(transceiver.receiver.track);
    }
    for (const side of ["visitor", "kiosk"]) {
      const video = this.videos[side];
      video.muted = true;
      video.srcObject = this.streams[side];
      video.play().catch(() => {});
    }
    pc.addEventListener("connectionstatechange", () => {
      if (this.stopped) return;
      if (pc.connectionState === "failed" || pc.connectionState === "closed") {
        this.onEnded(pc.connectionState);
      }
    });
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringDone(pc);
    const reply = await this.socket.request({
      type: "monitor",
      visit_id: this.visitId,
      sdp: pc.localDescription.sdp,
    });
    if (this.stopped) return;
    await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
  }

  /** Audio on or off for both sides. */
  setAudio(on) {
    for (const side of ["visitor", "kiosk"]) {
      const video = this.videos[side];
      video.muted = !on;
      if (on) video.play().catch(() => {});
    }
  }

  /** Stop watching: close the peer connection and tell the server (when still connected). */
  async stop({ tellServer = true } = {}) {
    if (this.stopped) return;
    this.stopped = true;
    if (this.pc) this.pc.close();
    for (const side of ["visitor", "kiosk"]) {
      const video = this.videos[side];
      video.pause();
      video.srcObject = null;
    }
    if (tellServer && this.socket.isOpen) {
      try {
        await this.socket.request({ type: "stop_monitor", visit_id: this.visitId });
      } catch (error) {
        // The visit may have ended meanwhile: nothing left to stop.
      }
    }
  }
}
