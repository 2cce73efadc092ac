// Plays the stream's fMP4 chunks through Media Source Extensions
// (ManagedMediaSource where only that exists, as on iOS Safari). Each
// chunk is one fragment (moof+mdat) whose decode times continue the
// stream's, so chunks are appended as they are rebuilt and the video
// element is steered: it starts once a playout buffer is in, jumps over
// the hole a skipped chunk leaves, and catches up if it falls far behind.

/** Buffered media ahead of the play position before playback starts (s). */
const START_AHEAD = 1.9;
/** Beyond this much buffered ahead, jump forward to keep latency low (s). */
const MAX_AHEAD = 6;
/** Media kept behind the play position (s). */
const KEEP_BEHIND = 20;

export class Player {
  /** @param {HTMLVideoElement} video @param {{onError?: (why: string) => void}} [opts] */
  constructor(video, opts = {}) {
    this.video = video;
    this.opts = opts;
    /** @type {MediaSource|null} */
    this.ms = null;
    /** @type {SourceBuffer|null} */
    this.sb = null;
    /** @type {Uint8Array[]} */
    this.queue = [];
    /** @type {Uint8Array|null} */
    this.initSeg = null;
    this.mime = '';
    this.playing = false;
    this.decodeErrors = 0;
    this.stalls = 0;
    this.stallMaxMs = 0;
    this.stallSince = 0;
    this.lastTime = 0;
    this.lastAdvance = 0;
    this.needKey = false;
    this.appended = 0;
  }

  /** @returns {boolean} whether this browser can play the codecs */
  static supports(/** @type {string} */ mime) {
    const MS = /** @type {any} */ (globalThis).ManagedMediaSource || globalThis.MediaSource;
    return !!MS && MS.isTypeSupported(mime);
  }

  /**
   * Opens a media source for the stream's init segment and codecs.
   * @param {Uint8Array} init @param {string} codecs RFC 6381, e.g. "avc1.42c01e,mp4a.40.2"
   */
  async open(init, codecs) {
    this.initSeg = init;
    this.mime = `video/mp4; codecs="${codecs}"`;
    if (!Player.supports(this.mime)) throw new Error(`this browser cannot play ${this.mime}`);
    await this.reset();
  }

  /** (Re)creates the media source and appends the init segment. */
  async reset() {
    const g = /** @type {any} */ (globalThis);
    const managed = !!g.ManagedMediaSource;
    /** @type {MediaSource} */
    const ms = managed ? new g.ManagedMediaSource() : new MediaSource();
    this.ms = ms;
    this.sb = null;
    this.queue = [];
    this.playing = false;
    if (managed) /** @type {any} */ (this.video).disableRemotePlayback = true;
    const url = URL.createObjectURL(ms);
    this.video.src = url;
    await new Promise((resolve) => ms.addEventListener('sourceopen', resolve, { once: true }));
    URL.revokeObjectURL(url);
    if (this.ms !== ms) return;
    const sb = ms.addSourceBuffer(this.mime);
    this.sb = sb;
    sb.addEventListener('updateend', () => this.pump());
    sb.addEventListener('error', () => this.fail('source buffer error'));
    this.video.onerror = () => this.fail(`media error ${this.video.error ? this.video.error.code : ''}`);
    if (this.initSeg) this.queue.push(this.initSeg);
    this.needKey = true;
    this.pump();
  }

  /** @param {string} why */
  fail(why) {
    this.decodeErrors++;
    if (this.opts.onError) this.opts.onError(why);
    // Start again from the init segment and the next keyframe chunk.
    this.reset().catch((e) => this.opts.onError && this.opts.onError(String(e)));
  }

  /**
   * Queues one chunk (an fMP4 fragment). After a reset only a keyframe
   * chunk starts playback again.
   * @param {Uint8Array} data @param {boolean} keyframe
   */
  append(data, keyframe) {
    if (!this.sb) return;
    if (this.needKey && !keyframe) return;
    this.needKey = false;
    this.queue.push(data);
    this.pump();
  }

  pump() {
    const sb = this.sb;
    if (!sb || sb.updating || this.queue.length === 0) return;
    const next = /** @type {Uint8Array} */ (this.queue.shift());
    try {
      sb.appendBuffer(/** @type {Uint8Array<ArrayBuffer>} */ (next));
      this.appended++;
    } catch (e) {
      if (/** @type {any} */ (e).name === 'QuotaExceededError') {
        this.queue.unshift(next);
        this.trim(true);
      } else {
        this.fail(`append: ${e}`);
      }
    }
  }

  /** Drops media far behind the play position. @param {boolean} [hard] */
  trim(hard) {
    const sb = this.sb;
    if (!sb || sb.updating || sb.buffered.length === 0) return;
    const cut = this.video.currentTime - (hard ? 2 : KEEP_BEHIND);
    if (cut > sb.buffered.start(0) + 1) {
      try {
        sb.remove(sb.buffered.start(0), cut);
      } catch {
        // removal is best effort
      }
    }
  }

  /** @returns {number} seconds buffered ahead of the play position */
  ahead() {
    const v = this.video;
    const b = v.buffered;
    for (let i = 0; i < b.length; i++) {
      if (v.currentTime >= b.start(i) - 0.05 && v.currentTime <= b.end(i)) return b.end(i) - v.currentTime;
    }
    return 0;
  }

  /** Steers playback; call a few times a second. @param {number} now ms */
  tick(now) {
    const v = this.video;
    const b = v.buffered;
    if (b.length === 0) return;
    if (!this.playing) {
      if (v.currentTime < b.start(0) || v.currentTime > b.end(b.length - 1)) v.currentTime = b.start(0);
      if (this.ahead() >= START_AHEAD) {
        this.playing = true;
        this.lastAdvance = now;
        v.play().catch((e) => this.opts.onError && this.opts.onError(`play: ${e}`));
      }
      return;
    }
    // A hole (a skipped chunk, or a reset): jump to the next range.
    if (this.ahead() < 0.1) {
      for (let i = 0; i < b.length; i++) {
        if (b.start(i) > v.currentTime) {
          v.currentTime = b.start(i) + 0.01;
          break;
        }
      }
    } else if (this.ahead() > MAX_AHEAD) {
      v.currentTime = b.end(b.length - 1) - START_AHEAD;
    }
    if (v.paused && this.ahead() > 0.5) v.play().catch(() => {});
    if (v.currentTime > this.lastTime + 0.001) {
      this.lastTime = v.currentTime;
      this.lastAdvance = now;
      this.stallSince = 0;
    } else if (now - this.lastAdvance > 250) {
      if (!this.stallSince) {
        this.stallSince = this.lastAdvance;
        this.stalls++;
      }
      this.stallMaxMs = Math.max(this.stallMaxMs, now - this.stallSince);
    }
    if (Math.random() < 0.02) this.trim(false);
  }
}
