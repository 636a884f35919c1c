// pvrec's player: draws the recording in the JSON block #pvrec-data (built by pvrec.render.html)
// on a canvas. Frames are class runs (decoded one at a time, a few kept); a screen pixel that
// covers K pages shows what the video shows for K (pixelsOf: MapLayout.pixels' rule), and at
// K = 1 each page. Text from the recording goes in with textContent only.
'use strict';
(() => {
  const DATA = JSON.parse(document.getElementById('pvrec-data').textContent);
  const SIDES = DATA.sides, STEPS = DATA.steps, M = DATA.master;
  const MAGS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64];
  const RANK_FREE = 1;
  const LABEL_H = 14, PAD = 10;

  // ---------------------------------------------------------------- small helpers
  function el(tag, cls, text, parent) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (parent) parent.appendChild(e);
    return e;
  }
  function rgba(hex) {  // '#RRGGBB' -> little-endian ABGR for a Uint32 view of ImageData
    const v = parseInt(hex.slice(1), 16);
    return (0xff000000 | ((v & 0xff) << 16) | (v & 0xff00) | (v >> 16)) >>> 0;
  }
  function blend(hex, toHex, f) {
    const a = parseInt(hex.slice(1), 16), b = parseInt(toHex.slice(1), 16);
    const ch = (s) => Math.round(((a >> s) & 255) + (((b >> s) & 255) - ((a >> s) & 255)) * f);
    return '#' + [16, 8, 0].map((s) => ch(s).toString(16).padStart(2, '0')).join('');
  }
  function bytesText(n) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(n < 10 ? 2 : 1) : String(n)) + ' ' + u[i];
  }
  function clock(t) {
    const m = Math.floor(t / 60), s = t - 60 * m;
    return 't=+' + String(m).padStart(2, '0') + 'm' + s.toFixed(1).padStart(4, '0') + 's';
  }
  function upper(ends, x) {  // first i with ends[i] > x
    let lo = 0, hi = ends.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (ends[mid] > x) hi = mid; else lo = mid + 1; }
    return lo;
  }
  function b64(s) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(s);
    const bin = atob(s), a = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) a[i] = bin.charCodeAt(i);
    return a;
  }
  async function sections(text) {  // data.py's _blob: [count, item bytes] + data, padded to 4
    const stream = new Blob([b64(text)]).stream().pipeThrough(new DecompressionStream('deflate'));
    const buf = await new Response(stream).arrayBuffer();
    const dv = new DataView(buf), out = [];
    let off = 0;
    while (off < buf.byteLength) {
      const n = dv.getUint32(off, true), size = dv.getUint32(off + 4, true);
      off += 8;
      const T = size === 1 ? Uint8Array : size === 2 ? Uint16Array : Uint32Array;
      if (size === 1) out.push(new Uint8Array(buf, off, n));
      else {  // byte planes: all low bytes first, then the next ones
        const src = new Uint8Array(buf, off, n * size), a = new T(n);
        for (let b = 0; b < size; b++) {
          const plane = src.subarray(b * n, (b + 1) * n), sh = 8 * b;
          for (let i = 0; i < n; i++) a[i] += plane[i] << sh;
        }
        out.push(a);
      }
      off += (n * size + 3) & ~3;
    }
    return out;
  }
  function cumulative(lengths, from) {
    const ends = new Float64Array(lengths.length);
    let s = from || 0;
    for (let i = 0; i < lengths.length; i++) { s += lengths[i]; ends[i] = s; }
    return ends;
  }
  // A stream (data.py's Stream) at section o of a frame's blob: a key frame's runs, or a patch
  // of the frame before: ranges [s, e) and their values (a palette and a code per range).
  function keyOf(sec, o) {
    const pal = sec[o + 2], codes = sec[o + 3], v = new Uint32Array(codes.length);
    for (let i = 0; i < codes.length; i++) v[i] = pal[codes[i]];
    return { ends: cumulative(sec[o]), v };
  }
  function patchOf(sec, o) {
    const gaps = sec[o], lens = sec[o + 1], n = gaps.length;
    const s = new Float64Array(n), e = new Float64Array(n);
    let at = 0;
    for (let i = 0; i < n; i++) { at += gaps[i]; s[i] = at; at += lens[i]; e[i] = at; }
    const pal = sec[o + 2], codes = sec[o + 3], v = new Uint32Array(n);
    for (let i = 0; i < n; i++) v[i] = pal[codes[i]];
    return { s, e, v };
  }
  function applyPatch(r, p) {  // runs r with the ranges of patch p replaced
    const R = r.ends.length, P = p.s.length;
    const ends = new Float64Array(R + 2 * P + 1), v = new Uint32Array(R + 2 * P + 1);
    let n = 0, i = 0, pos = 0;
    const push = (end, val) => {
      if (n && v[n - 1] === val) ends[n - 1] = end; else { ends[n] = end; v[n] = val; n++; }
    };
    for (let k = 0; k <= P; k++) {
      const s = k < P ? p.s[k] : r.ends[R - 1];
      while (pos < s) {
        while (r.ends[i] <= pos) i++;
        const end = Math.min(r.ends[i], s);
        push(end, r.v[i]);
        pos = end;
      }
      if (k < P) { push(p.e[k], p.v[k]); pos = p.e[k]; }
    }
    return { ends: ends.subarray(0, n), v: v.subarray(0, n) };
  }
  function zip(a, b) {  // two run lists over the same pages -> {ends, cls, rank}
    const n = a.ends.length + b.ends.length;
    const ends = new Float64Array(n), cls = new Uint8Array(n), rank = new Uint8Array(n);
    let i = 0, j = 0, k = 0;
    while (i < a.ends.length && j < b.ends.length) {
      const e = Math.min(a.ends[i], b.ends[j]);
      ends[k] = e; cls[k] = a.v[i]; rank[k] = b.v[j]; k++;
      if (a.ends[i] === e) i++;
      if (b.ends[j] === e) j++;
    }
    return { ends: ends.subarray(0, k), cls: cls.subarray(0, k), rank: rank.subarray(0, k) };
  }

  // ---------------------------------------------------------------- one map
  class Map {
    constructor(d, index) {
      this.d = d; this.index = index;
      // the layout drawn: with its bands (folded), or, zoomed into a band, without (unfolded)
      this.folded = d.layout; this.unfolded = d.layout.unfolded || null;
      this.lay = this.folded; this.cls = d.classes;
      this.KE = d.key_every;
      this.byPos = new globalThis.Map(d.frames.map((f, i) => [f.pos, i]));
      this.blobs = { runs: new globalThis.Map() };
      this.states = {};  // stream -> Map of rebuilt frames (checkpoints)
      this.frames = new globalThis.Map();  // frame index -> Promise of {ends, cls, rank}
      this.focus = -1; this.focusMode = 0;  // legend click: 1 dims the others, 2 hides them
      this.colors();
    }
    colors() {
      const c = this.cls, bg = c.ui.bg;
      const mode = this.focusMode, f = this.focus;
      const pick = (hex, i) => (f < 0 || i === f || i === c.hole) ? rgba(hex) :
        mode === 2 ? rgba(bg) : rgba(blend(hex, bg, 0.7));
      this.col = Uint32Array.from(c.colors.map(pick));
      this.tint = Uint32Array.from(c.tints.map(pick));
      this.dimmed = Uint32Array.from(c.colors.map((h, i) => i === c.hole ? rgba(h) : rgba(blend(h, bg, 0.7))));
    }
    frameAt(pos) { return this.byPos.get(pos); }
    isKey(fi) { return fi % this.KE === 0; }
    blob(fi, kind) {  // the decoded sections of a frame's blob (a few dozen kept)
      const cache = this.blobs[kind];
      let p = cache.get(fi);
      if (!p) {
        p = sections(this.d.frames[fi][kind]);
        cache.set(fi, p);
        if (cache.size > 40) cache.delete(cache.keys().next().value);
      } else { cache.delete(fi); cache.set(fi, p); }
      return p;
    }
    async stream(kind, o, fi) {  // the runs of one stream at frame fi: from its key frame on
      // rebuilt frames kept as checkpoints (every 4th of a replay, a few per stream), so
      // that stepping back replays a few patches, not the whole way from the key frame
      const name = kind + o, key = fi - fi % this.KE;
      const kept = this.states[name] || (this.states[name] = new globalThis.Map());
      let at = -1;
      for (const j of kept.keys()) if (j <= fi && j >= key && j > at) at = j;
      let runs;
      if (at >= 0) { runs = kept.get(at); kept.delete(at); kept.set(at, runs); }
      else { at = key; runs = keyOf(await this.blob(key, kind), o); }
      for (let j = at + 1; j <= fi; j++) {
        runs = applyPatch(runs, patchOf(await this.blob(j, kind), o));
        if (j % 4 === 0 && j !== fi) this.keep(kept, j, runs);
      }
      this.keep(kept, fi, runs);
      return runs;
    }
    keep(kept, fi, runs) {
      kept.delete(fi);
      kept.set(fi, runs);
      if (kept.size > 8) kept.delete(kept.keys().next().value);
    }
    draw(fi) {  // class runs (and ranks) of frame fi, the layout's holes spliced in
      let p = this.frames.get(fi);
      if (!p) {
        p = this.classRuns(fi);
        this.frames.set(fi, p);
        if (this.frames.size > 4) this.frames.delete(this.frames.keys().next().value);
      }
      return p;
    }
    async classRuns(fi) {
      const d = this.d, keep = this.cls.keep, vc = d.value_class, vr = d.value_rank;
      const f = await this.stream('runs', 0, fi);
      let runs;
      if (d.by_table) {
        const v = new Uint32Array(f.v.length);
        for (let i = 0; i < v.length; i++) v[i] = vc[f.v[i]] | (keep ? vr[f.v[i]] << 8 : 0);
        runs = { ends: f.ends, v };
      } else {
        const c = await this.stream('runs', 4 * d.streams.indexOf('classes'), fi);
        if (keep) {
          const rv = new Uint32Array(f.v.length);
          for (let i = 0; i < rv.length; i++) rv[i] = vr[f.v[i]];
          const z = zip(c, { ends: f.ends, v: rv }), v = new Uint32Array(z.cls.length);
          for (let i = 0; i < v.length; i++) v[i] = z.cls[i] | (z.rank[i] << 8);
          runs = { ends: z.ends, v };
        } else runs = c;
      }
      const holes = this.lay.holes;
      if (holes.length) {
        runs = applyPatch(runs, { s: holes.map((h) => h[0]), e: holes.map((h) => h[1]),
                                  v: holes.map(() => this.cls.hole) });
      }
      const n = runs.v.length, cls = new Uint8Array(n), rank = keep ? new Uint8Array(n) : null;
      for (let i = 0; i < n; i++) { cls[i] = runs.v[i] & 255; if (rank) rank[i] = runs.v[i] >> 8; }
      // --highlight workload: the runs of pages the workload maps (the other pixels dimmed)
      const wl = d.highlight === 'workload' && d.streams.includes('workload') ?
        await this.stream('runs', 4 * d.streams.indexOf('workload'), fi) : null;
      return { ends: runs.ends, cls, rank, wl };
    }
    async valueAt(kind, o, fi, pfn) {  // one stream's value at pfn: the last patch holding it
      for (let j = fi; ; j--) {
        const sec = await this.blob(j, kind);
        if (this.isKey(j)) { const r = keyOf(sec, o), i = upper(r.ends, pfn); return i < r.v.length ? r.v[i] : null; }
        const p = patchOf(sec, o), i = upper(p.e, pfn);
        if (i < p.s.length && p.s[i] <= pfn) return p.v[i];
      }
    }
    async since(fi, pfn) {  // the first frame of the streak in which pfn has held its class
      const d = this.d;
      if (this.lay.holes.some((h) => h[0] <= pfn && pfn < h[1])) return 0;
      const o = d.by_table ? 0 : 4 * d.streams.indexOf('classes');
      const classOf = (v) => d.by_table ? d.value_class[v] : v;
      let cur = null, prev = null, first = 0;
      for (let j = 0; j <= fi; j++) {
        const sec = await this.blob(j, 'runs');
        if (this.isKey(j)) { const r = keyOf(sec, o), i = upper(r.ends, pfn); cur = r.v[i]; }
        else { const p = patchOf(sec, o), i = upper(p.e, pfn); if (i < p.s.length && p.s[i] <= pfn) cur = p.v[i]; }
        const c = classOf(cur);
        if (prev !== null && c !== prev) first = j;
        prev = c;
      }
      return first;
    }
  }

  // The video's rule for a pixel of K pages (raster.MapLayout.pixels): the class of the run
  // holding all of it; else, among its pages of the highest rank present (unmovable, in use,
  // free, hole), the most common class (ties: the lower class number), partly free when it
  // is in use and holds free pages; without ranks the most common class, RAM winning a tie
  // with a hole. Pixels lo..hi-1; pages past the last run are holes (the padding).
  function pixelsOf(fr, K, lo, hi, hole) {
    const n = hi - lo, px = new Uint8Array(n), partly = new Uint8Array(n);
    const ends = fr.ends, cls = fr.cls, rank = fr.rank, R = ends.length;
    const counts = new Float64Array(256), seen = [];
    let i = upper(ends, lo * K);
    for (let p = 0; p < n; p++) {
      const s = (lo + p) * K, e = s + K;
      while (i < R && ends[i] <= s) i++;
      if (i >= R) { px.fill(hole, p); break; }
      if (ends[i] >= e) {  // whole pixels inside run i
        const last = Math.min(n, Math.floor(ends[i] / K) - lo);
        px.fill(cls[i], p, last);
        p = last - 1;
        continue;
      }
      let present = 0;
      for (let j = i; j < R && (j ? ends[j - 1] : 0) < e; j++) {
        const r = rank ? (cls[j] === hole ? 0 : rank[j]) : 0;
        present |= 1 << r;
      }
      if (ends[R - 1] < e) present |= 1;  // padding: a hole
      const top = rank ? 31 - Math.clz32(present) : 0;
      for (let j = i; j < R && (j ? ends[j - 1] : 0) < e; j++) {
        const r = rank ? (cls[j] === hole ? 0 : rank[j]) : 0;
        if (r !== top) continue;
        const a = Math.max(j ? ends[j - 1] : 0, s), b = Math.min(ends[j], e);
        if (counts[cls[j]] === 0) seen.push(cls[j]);
        counts[cls[j]] += 2 * (b - a);
      }
      if (ends[R - 1] < e && top === 0) {
        if (counts[hole] === 0) seen.push(hole);
        counts[hole] += 2 * (e - ends[R - 1]);
      }
      if (!rank && counts[hole] > 0) counts[hole] -= 1;
      let best = -1, bc = -1;
      for (const c of seen) if (counts[c] > bc || (counts[c] === bc && c < best)) { best = c; bc = counts[c]; }
      for (const c of seen) counts[c] = 0;
      seen.length = 0;
      px[p] = best;
      if (rank && (present & (1 << RANK_FREE)) && top > RANK_FREE) partly[p] = 1;
    }
    return { px, partly };
  }

  function touched(wl, K, lo, hi) {  // pixels lo..hi-1 holding a page of a nonzero run
    const out = new Uint8Array(hi - lo);
    let s = 0;
    for (let i = 0; i < wl.ends.length; s = wl.ends[i], i++) {
      if (!wl.v[i] || wl.ends[i] <= lo * K || s >= hi * K) continue;
      const a = Math.max(lo, Math.floor(s / K)), b = Math.min(hi, Math.ceil(wl.ends[i] / K));
      out.fill(1, a - lo, b - lo);
    }
    return out;
  }

  // ---------------------------------------------------------------- the page
  const maps = SIDES.map((d, i) => new Map(d, i));
  const rowPages = maps[0].lay.row_pages;
  const divs = Object.keys(maps[0].lay.levels).map(Number).sort((a, b) => b - a);
  const LEVELS = divs.map((k) => ({ K: k, mag: 1 })).concat(MAGS.slice(1).map((m) => ({ K: 1, mag: m })));
  const state = { step: 0, level: 0, ox: PAD, oy: PAD + LABEL_H, playing: false, fps: 10,
                  pinned: null, hover: null, drawn: [], fitLevel: 0, unfolded: false };

  document.body.classList.add('pvrec');
  const app = el('div', 'app', null, document.body);
  const bar = el('div', 'bar', null, app);
  const playBtn = el('button', 'play', '\u25B6 play', bar);
  const backBtn = el('button', '', '\u25C0', bar);
  const fwdBtn = el('button', '', '\u25B6', bar);
  backBtn.title = 'previous frame (left arrow)'; fwdBtn.title = 'next frame (right arrow)';
  playBtn.title = 'play / pause (space)';
  el('span', 'lbl', 'speed', bar);
  const speedSel = el('select', '', null, bar);
  for (const f of [1, 2, 5, 10, 20, 30, 60]) {
    const o = el('option', '', f + ' frames/s', speedSel); o.value = String(f);
    if (f === state.fps) o.selected = true;
  }
  const zoomOut = el('button', '', '\u2212', bar), zoomIn = el('button', '', '+', bar);
  zoomOut.title = 'zoom out (-)'; zoomIn.title = 'zoom in (+)';
  const fitBtn = el('button', '', 'whole machine', bar);
  fitBtn.title = 'fit the whole map in the window, folded';
  const zoomText = el('span', 'zoom', '', bar);
  const timeText = el('span', 'time', '', bar);
  const helpBtn = el('button', 'helpbtn', '?', bar);
  helpBtn.title = 'keys (?)';
  const help = el('div', 'help', null, app);
  help.hidden = true;
  for (const [k, v] of [['space', 'play / pause'], ['\u2190 \u2192', 'previous / next frame'],
    ['Home End', 'first / last frame'], ['+ \u2212  wheel  pinch', 'zoom (into a band: unfold it)'],
    ['drag', 'pan'], ['double-click', 'zoom in there, unfold a band'], ['click', 'pin the page (again: unpin)'],
    ['Esc', 'unpin'], ['?', 'this help']]) {
    const row = el('div', '', null, help); el('kbd', '', k, row); el('span', '', v, row);
  }
  const panes = el('div', 'panes' + (maps.length > 1 ? ' pair' : ' solo'), null, app);
  const hoverBox = el('div', 'hoverbox', null, document.body);  // floats beside the hovered page
  hoverBox.hidden = true;

  for (const m of maps) {
    const d = m.d, pane = el('div', 'pane', null, panes);
    const head = el('div', 'head', null, pane);
    el('div', 'title', d.title || (d.command.length ? d.command.join(' ') : d.name), head);
    el('div', 'sub', [d.hostname, d.kernel, d.start, d.name].filter(Boolean).join('   '), head);
    m.frameText = el('div', 'frame', '', head);
    const body = el('div', 'body', null, pane), main = el('div', 'main', null, body);
    const wrap = el('div', 'mapwrap', null, main);
    m.canvas = el('canvas', 'map', null, wrap);
    m.canvas.tabIndex = 0;
    m.strip = el('canvas', 'strip', null, main);
    m.stripNote = el('div', 'note', '', main);
    m.legend = el('div', 'legend', null, body);  // beside the map where there is room (CSS)
    m.info = el('div', 'info', null, hoverBox);
    buildLegend(m);
  }

  function buildLegend(m) {
    const c = m.cls;
    m.rows = [];
    c.names.forEach((name, i) => {
      if (i === c.hole) return;
      const row = el('div', 'row', null, m.legend);
      const sw = el('span', 'sw', null, row);
      sw.style.background = c.colors[i];
      el('span', 'name', name, row);
      const size = el('span', 'size', '', row);
      row.title = c.descriptions[i] + ' (click: dim the others, again: hide them)';
      row.addEventListener('click', () => {
        if (m.focus !== i) { m.focus = i; m.focusMode = 1; } else if (m.focusMode === 1) m.focusMode = 2;
        else { m.focus = -1; m.focusMode = 0; }
        m.colors();
        m.rows.forEach((r) => r.row.classList.toggle('off', m.focus >= 0 && r.i !== m.focus));
        render();
      });
      m.rows.push({ i, row, size });
    });
    if (c.keep) el('div', 'note', 'paler: partly free (a pixel of K pages, in use, unmovable first)', m.legend);
    if (m.d.cell) el('div', 'note', 'one cell per huge-page block', m.legend);
  }

  // ---------------------------------------------------------------- geometry
  function lv() { return LEVELS[state.level]; }
  function tileRects(m, L) {  // each tile's (and band's) rectangle: x, y on the canvas, w, h in map pixels
    const lay = m.lay, at = lay.levels[L.K], w = lay.row_pages / L.K;
    return lay.tiles.map((t, i) => ({ t, i, band: t.kind === 'band', x: state.ox + at.tiles[i][0] * L.mag,
      y: state.oy + at.tiles[i][1] * L.mag, w: t.kind === 'band' ? at.tiles[i][2] : w, h: t.rows }));
  }
  function bandPfn(r, sx) {  // the PFN at screen column sx of a band: by its share of the band (MapLayout.locate)
    const n = r.t.pages, W = r.w * lv().mag;
    return r.t.first_pfn + Math.min(n - 1, Math.ceil(Math.floor(sx) * n / W));
  }
  function pfnAt(m, cx, cy) {  // canvas point -> {pfn, K, band} or null
    const L = lv();
    for (const r of tileRects(m, L)) {
      const c = Math.floor((cx - r.x) / L.mag), row = Math.floor((cy - r.y) / L.mag);
      if (c >= 0 && c < r.w && row >= 0 && row < r.h) {
        if (r.band) return { pfn: bandPfn(r, cx - r.x), K: L.K, band: r.i };
        const pfn = r.t.first_pfn + row * m.lay.row_pages + c * L.K;
        if (pfn < m.lay.pfn_count) return { pfn, K: L.K };
      }
    }
    return null;
  }
  function placeOf(m, L, pfn) {  // map pixel [x, y] (fractional, at level L) of a PFN (may be fractional)
    const lay = m.lay, at = lay.levels[L.K];
    for (let i = 0; i < lay.tiles.length; i++) {
      const t = lay.tiles[i], off = pfn - t.first_pfn;
      if (t.kind === 'band') {
        if (off >= 0 && off < t.pages) return [at.tiles[i][0] + off * at.tiles[i][2] / t.pages, at.tiles[i][1] + t.rows / 2, t];
      } else if (off >= 0 && off < t.rows * lay.row_pages) {
        const row = Math.floor(off / lay.row_pages);
        return [at.tiles[i][0] + (off - row * lay.row_pages) / L.K, at.tiles[i][1] + row, t];
      }
    }
    return null;
  }
  function screenOf(m, pfn) {  // the canvas point at the middle of the pixel showing pfn
    const L = lv(), p = placeOf(m, L, pfn);
    if (!p) return null;
    if (p[2].kind === 'band') {
      const t = p[2], i = m.lay.tiles.indexOf(t), at = m.lay.levels[L.K].tiles[i];
      const col = Math.floor((pfn - t.first_pfn) * at[2] * L.mag / t.pages);  // MapLayout.locate, per screen column
      return [state.ox + at[0] * L.mag + col + 0.5, state.oy + p[1] * L.mag];
    }
    return [state.ox + (Math.floor(p[0]) + 0.5) * L.mag, state.oy + (p[1] + 0.5) * L.mag];
  }
  // Where memory under a canvas point is: a fractional PFN (and the point's height in its
  // row), so that after a change of zoom or layout the same memory goes back under the point.
  function anchorAt(m, cx, cy) {
    const L = lv(), rs = tileRects(m, L);
    let best = null, bd = Infinity;  // the rectangle under the point, or the nearest one
    for (const r of rs) {
      const dx = Math.max(r.x - cx, 0, cx - r.x - r.w * L.mag), dy = Math.max(r.y - cy, 0, cy - r.y - r.h * L.mag);
      if (dx * dx + dy * dy < bd) { bd = dx * dx + dy * dy; best = r; }
    }
    if (!best) return null;
    const r = best, fx = Math.min(r.w, Math.max(0, (cx - r.x) / L.mag)), fy = Math.min(r.h, Math.max(0, (cy - r.y) / L.mag));
    if (r.band) return { pfn: r.t.first_pfn + Math.min(r.t.pages - 1e-6, fx / r.w * r.t.pages), fy: 0.5, band: bd === 0 };
    const row = Math.min(r.h - 1, Math.floor(fy));
    return { pfn: Math.min(r.t.first_pfn + row * m.lay.row_pages + Math.min(fx * L.K, m.lay.row_pages - 1e-6), m.lay.pfn_count - 1e-6),
      fy: fy - row, band: false };
  }
  function useLayout(unfolded) {
    state.unfolded = unfolded && maps.some((m) => m.unfolded);
    for (const m of maps) m.lay = state.unfolded && m.unfolded ? m.unfolded : m.folded;
  }
  // The grid the tiles are arranged in: `cols` columns, as MapLayout.arrange places them
  // (data.py's grids; a map without that many columns takes its widest one below it).
  function useGrid(cols) {
    state.cols = cols;
    for (const m of maps) {
      for (const lay of [m.folded, m.unfolded]) {
        if (!lay) continue;
        const have = Object.keys(lay.grids).map(Number);
        const pick = Math.max(...have.filter((c) => c <= cols), Math.min(...have));
        lay.levels = lay.grids[pick];
      }
    }
  }
  function extent(m, L) {  // the canvas box the map takes at level L: tiles, labels above, zone labels below
    const g = m.lay.levels[L.K];
    return { x0: state.ox, y0: state.oy - LABEL_H, x1: state.ox + g.width * L.mag,
             y1: state.oy + g.height * L.mag + (m.lay.marks.length ? LABEL_H : 0) };
  }
  // The zoom rule (docs/rendering.md): zooming in past the whole-machine view with the point
  // over a band (the wheel, a pinch, +/- at the canvas middle, a double-click) unfolds the
  // collapsed memory; zooming back out to the whole-machine view (or "whole machine") folds it.
  function setLevel(level, cx, cy, unfold) {
    level = Math.max(0, Math.min(LEVELS.length - 1, level));
    const m = maps[0], c = m.canvas;
    if (cx === undefined) { cx = c.width / 2; cy = c.height / 2; }
    const at = anchorAt(m, cx, cy);
    let open = state.unfolded;
    if (level <= state.fitLevel) open = false;
    else if ((unfold || level > state.level) && at && at.band) open = true;
    state.level = level;
    state.fitted = false;
    useLayout(open);
    const p = at && placeOf(m, lv(), at.pfn);
    if (p) {
      const L = lv(), y = p[2].kind === 'band' ? p[1] : p[1] + at.fy;
      state.ox = Math.round(cx - p[0] * L.mag);
      state.oy = Math.round(cy - y * L.mag);
    }
    return render();
  }
  // The whole machine, folded, inside the canvas both ways: of every grid (column count) and
  // level, the finest (fewest pages per pixel, then the largest) that fits; among grids that
  // fit at that level, the one that fills the canvas best. Nothing fits a tiny window: the
  // coarsest level, in the grid that overflows least.
  function fit() {
    useLayout(false);
    const best = fitting(), c = maps[0].canvas, lay = maps[0].folded;
    useGrid(best.cols);
    state.level = state.fitLevel = best.i;
    const L = lv(), g = lay.levels[L.K];
    state.ox = Math.max(PAD, Math.floor((c.width - g.width * L.mag) / 2));
    state.oy = PAD + LABEL_H;
    state.fitted = true;
    return render();
  }
  function better(a, b) {  // keys compared in order
    const j = b ? a.findIndex((v, n) => v !== b[n]) : 0;
    return !b || (j >= 0 && a[j] > b[j]);
  }
  function fitting() {  // {cols, i (level), key} of the whole-machine view in the canvas now
    const m = maps[0], c = m.canvas, lay = m.folded, extra = LABEL_H + (lay.marks.length ? LABEL_H : 0);
    let best = null;
    for (const cols of Object.keys(lay.grids).map(Number)) {
      LEVELS.forEach((L, i) => {
        const g = lay.grids[cols][L.K], w = g.width * L.mag + 2 * PAD, h = g.height * L.mag + extra + 2 * PAD;
        const fill = Math.min(c.width / w, c.height / h), fits = fill >= 1;
        const key = fits ? [1, i, fill] : [0, -i, fill];
        if (better(key, best && best.key)) best = { key, cols, i };
      });
    }
    return best;
  }
  // One map in a wide window: the legend beside it, unless the width it takes would cost the
  // whole-machine view a finer level (then below, as in a narrow window or with two maps).
  // True when a canvas changed size.
  function arrange() {
    const was = maps.map((m) => [m.canvas.width, m.canvas.height].join());
    panes.classList.remove('aside');
    if (maps.length === 1 && window.innerWidth >= 1000) {
      sizeCanvases();
      const below = fitting().key;
      panes.classList.add('aside');
      sizeCanvases();
      if (better([below[0], below[1]], fitting().key.slice(0, 2))) panes.classList.remove('aside');
    }
    sizeCanvases();
    return maps.some((m, i) => [m.canvas.width, m.canvas.height].join() !== was[i]);
  }
  // The canvases as wide as their column and as tall as the window leaves below the canvas
  // once the strip and its note are counted: controls, map and strip in view together.
  // True when a size changed.
  function sizeCanvases() {
    let changed = false;
    for (const m of maps) {
      const w = Math.max(200, Math.floor(m.canvas.parentElement.clientWidth));
      const top = m.canvas.getBoundingClientRect().top + window.scrollY;
      const under = 84 + m.stripNote.offsetHeight + 16;
      const h = Math.max(240, Math.floor(window.innerHeight - top - under));
      if (m.canvas.width !== w || m.canvas.height !== h) changed = true;
      m.canvas.width = w; m.canvas.height = h;
      if (m.strip.width !== w) m.strip.width = w;
      m.strip.height = 84;
    }
    return changed;
  }

  // ---------------------------------------------------------------- drawing
  let token = 0;
  async function render() {
    const my = ++token, k = state.step;
    const frames = maps.map((m) => m.frameAt(STEPS[k][m.index]));
    const decoded = await Promise.all(maps.map((m, i) => m.draw(frames[i])));
    if (my !== token) return;
    maps.forEach((m, i) => paint(m, decoded[i], frames[i]));
    state.drawn = frames;
    updateText(frames);
    document.body.dataset.step = String(k);
    prefetch(k);
  }
  function prefetch(k) {
    const next = (k + 1) % STEPS.length;
    maps.forEach((m) => m.draw(m.frameAt(STEPS[next][m.index])));
  }
  function paint(m, fr, fi) {
    const c = m.canvas, ctx = c.getContext('2d'), W = c.width, H = c.height;
    const L = lv(), lay = m.lay, cl = m.cls, ui = cl.ui;
    if (!m.img || m.img.width !== W || m.img.height !== H) {  // one ImageData per canvas size
      m.img = ctx.createImageData(W, H);
      m.buf = new Uint32Array(m.img.data.buffer);
    }
    const img = m.img, buf = m.buf;
    buf.fill(rgba(ui.bg));
    const rib = [rgba(ui.ribbon_a), rgba(ui.ribbon_b)];
    const zones = lay.marks.filter((mk) => mk.kind === 'zone');
    // compose._draw_zones: a ribbon rw wide, 2 pixels left of each tile, where the gap has room
    const one = lay.tiles.length === 1, rw = lay.gap >= 7 || one ? 3 : 2;
    const ribbons = zones.length && (lay.gap >= rw + 2 || one);
    for (const r of tileRects(m, L)) {
      const mag = L.mag, x0 = Math.max(0, Math.floor(r.x)), x1 = Math.min(W, Math.ceil(r.x + r.w * mag));
      const y0 = Math.max(0, Math.floor(r.y)), y1 = Math.min(H, Math.ceil(r.y + r.h * mag));
      if (r.band) {  // one class; dimmed as the video dims it (--highlight: always; legend focus)
        const v = fr.wl ? m.dimmed[r.t.cls] : m.col[r.t.cls];
        for (let y = y0; y < y1; y++) buf.fill(v, y * W + x0, y * W + Math.max(x0, x1));
        continue;
      }
      // the zone ribbon, left of the tile: alternating shades per zone
      if (ribbons) {
        const rx = Math.floor(r.x) - rw - 2;
        for (let y = y0; y < y1; y++) {
          const row = Math.floor((y - r.y) / mag), first = r.t.first_pfn + row * lay.row_pages;
          let zi = -1;
          zones.forEach((z, i) => { if (first + lay.row_pages > z.pfn && first < z.end_pfn) zi = i; });
          if (zi >= 0) for (let x = Math.max(0, rx); x < rx + rw && x < W; x++) buf[y * W + x] = rib[zi % 2];
        }
      }
      if (x0 >= x1 || y0 >= y1) continue;
      const c0 = Math.floor((x0 - r.x) / mag), c1 = Math.ceil((x1 - r.x) / mag);
      const r0 = Math.floor((y0 - r.y) / mag), r1 = Math.ceil((y1 - r.y) / mag);
      const base = r.t.first_pfn / L.K;
      const lo = base + r0 * r.w, hi = base + (r1 - 1) * r.w + c1;
      const got = pixelsOf(fr, L.K, lo, hi, cl.hole);
      const cols = new Int32Array(x1 - x0);  // the tile column under each screen column
      for (let x = x0; x < x1; x++) cols[x - x0] = Math.floor((x - r.x) / mag);
      const px = got.px, partly = got.partly, col = m.col, tint = m.tint;
      if (fr.wl) {  // a pixel none of whose pages the workload maps is dimmed, never tinted
        const mapped = touched(fr.wl, L.K, lo, hi);
        for (let i = 0; i < px.length; i++) if (!mapped[i]) { partly[i] = 2; }
      }
      for (let y = y0; y < y1; y++) {
        const off = base + Math.floor((y - r.y) / mag) * r.w - lo;
        let at = y * W + x0;
        for (let x = 0; x < cols.length; x++, at++) {
          const i = off + cols[x];
          const q = partly[i];
          buf[at] = q === 0 ? col[px[i]] : q === 1 ? tint[px[i]] : m.dimmed[px[i]];
        }
      }
    }
    ctx.putImageData(img, 0, 0);
    // tile labels (canvas text: never parsed as HTML)
    ctx.fillStyle = ui.dim; ctx.font = '11px sans-serif'; ctx.textBaseline = 'bottom';
    let lastEnd = {};
    tileRects(m, L).forEach((r, i) => {
      // at the tile's left edge, or at the canvas's while the tile runs on past it
      const t = lay.labels[i], y = Math.round(r.y) - 2, x = Math.max(r.x, 2);
      if ((lastEnd[y] || -1e9) > x || x > W || r.x + r.w * L.mag < 40) return;
      ctx.fillText(t, x, y);
      lastEnd[y] = x + ctx.measureText(t).width + 6;
    });
    paintMarks(m, ctx, L);
    const hv = state.pinned || state.hover;
    if (hv && hv.side === m.index) {
      const p = screenOf(m, hv.pfn);
      if (p) { ctx.strokeStyle = ui.fg; ctx.lineWidth = 1; const s = Math.max(L.mag, 3) + 2;
        ctx.strokeRect(Math.floor(p[0] - s / 2) + 0.5, Math.floor(p[1] - s / 2) + 0.5, s, s); }
    }
    paintStrip(m, fi);
  }
  // compose._draw_zones' marks: a tick left of the row where a zone (node) begins, and its
  // name under the tile where it begins (nodes first, then the largest; one name per place).
  function paintMarks(m, ctx, L) {
    const lay = m.lay, ui = m.cls.ui, rects = tileRects(m, L);
    const tileOf = (pfn) => rects.find((r) => r.t.first_pfn <= pfn && pfn < r.t.first_pfn + r.t.pages);
    ctx.fillStyle = ui.fg;
    for (const mk of lay.marks) {
      const r = tileOf(mk.pfn);
      if (!r) continue;
      const row = r.band ? 0 : Math.floor((mk.pfn - r.t.first_pfn) / lay.row_pages), tick = mk.kind === 'zone' ? 6 : 9;
      ctx.fillRect(Math.floor(r.x) - tick, Math.floor(r.y + row * L.mag), tick - 1, 1);
    }
    ctx.font = '11px sans-serif'; ctx.textBaseline = 'top';
    const placed = [];
    m.labelsDrawn = [];
    const order = lay.marks.slice().sort((a, b) => (a.kind !== 'node') - (b.kind !== 'node') || (b.end_pfn - b.pfn) - (a.end_pfn - a.pfn));
    for (const mk of order) {
      const r = tileOf(mk.pfn);
      if (!r) continue;
      const x = Math.max(Math.round(r.x), 2), y = Math.round(r.y + r.h * L.mag) + 2, w = ctx.measureText(mk.name).width;
      if (placed.some((p) => p[0] === y && x < p[2] && p[1] < x + w + 6)) continue;
      ctx.fillStyle = mk.kind === 'node' ? ui.fg : ui.dim;
      ctx.fillText(mk.name, x, y);
      placed.push([y, x, x + w + 6]);
      m.labelsDrawn.push({ name: mk.name, kind: mk.kind, x, y });
    }
  }
  function paintStrip(m, fi) {
    const c = m.strip, ctx = c.getContext('2d'), W = c.width, H = c.height;
    const cl = m.cls, frames = m.d.frames, n = frames.length;
    ctx.fillStyle = cl.ui.bg; ctx.fillRect(0, 0, W, H);
    const used = cl.names.map((_, i) => i).filter((i) => i !== cl.hole && !cl.idle.includes(i));
    let peak = 1;
    for (const f of frames) { let s = 0; for (const i of used) s += f.sizes[i]; peak = Math.max(peak, s); }
    // in time, as the video's strip: each frame from halfway to the one before to halfway to
    // the next, so the first and the last have half a step each
    const t0 = frames[0].t, span = Math.max(frames[n - 1].t - t0, 1e-9);
    const xt = (t) => Math.round((t - t0) / span * (W - 1)), x = (j) => xt(frames[j].t);
    for (let j = 0; j < n; j++) {
      const x0 = j ? xt((frames[j - 1].t + frames[j].t) / 2) : 0;
      const x1 = j + 1 < n ? xt((frames[j].t + frames[j + 1].t) / 2) : W;
      let yb = H;
      for (let u = used.length - 1; u >= 0; u--) {
        const i = used[u], h = frames[j].sizes[i] / peak * (H - 4);
        ctx.fillStyle = (m.focus >= 0 && i !== m.focus) ? blend(cl.colors[i], cl.ui.bg, 0.7) : cl.colors[i];
        ctx.fillRect(x0, yb - h, Math.max(1, x1 - x0), h);
        yb -= h;
      }
    }
    m.d.metrics.forEach((_, li) => {  // the metric lines, each on its own scale from 0
      let top = 0;
      for (const f of frames) top = Math.max(top, f.metrics[li]);
      ctx.strokeStyle = cl.lines[li % cl.lines.length]; ctx.lineWidth = 1.5; ctx.beginPath();
      frames.forEach((f, j) => { const y = H - 2 - (top ? f.metrics[li] / top : 0) * (H - 6); j ? ctx.lineTo(x(j), y) : ctx.moveTo(x(j), y); });
      ctx.stroke();
    });
    ctx.fillStyle = cl.ui.fg; ctx.fillRect(Math.min(W - 2, x(fi)), 0, 2, H);
    m.stripNote.textContent = (cl.idle.length ? 'in use (all but ' + cl.idle.map((i) => cl.names[i]).join(', ') + ')' : 'every class') +
      ', 0 to ' + bytesText(peak * m.d.page_size) +
      (m.d.metrics.length ? '; lines: ' + m.d.metrics.join(', ') : '') + '; click or drag to scrub';
  }
  function updateText(frames) {
    maps.forEach((m, i) => {
      const f = m.d.frames[frames[i]], ram = m.d.ram_pages, ps = m.d.page_size;
      m.frameText.textContent = clock(f.t) + '   frame ' + f.pos + ' of ' + m.d.count;
      for (const r of m.rows) {
        const pages = f.sizes[r.i];
        r.size.textContent = (m.d.cell ? (pages / (m.d.cell * m.d.cell)).toLocaleString('en') + ' blocks  ' : '') +
          bytesText(pages * ps) + '  ' + (100 * pages / ram).toFixed(1) + '%';
      }
    });
    const L = lv();
    zoomText.textContent = L.K > 1 ? L.K + ' pages/pixel' : L.mag > 1 ? '1 page = ' + L.mag + 'x' + L.mag + ' pixels' : '1 page/pixel';
    timeText.textContent = 'step ' + (state.step + 1) + ' of ' + STEPS.length;
    const hv = state.pinned || state.hover;
    if (hv) showInfo(hv);
  }

  // ---------------------------------------------------------------- hover
  function zoneOf(m, pfn, kind) {
    let out = null;
    for (const mk of m.lay.marks) if (mk.kind === kind && mk.pfn <= pfn && pfn < mk.end_pfn) out = mk.name;
    return out;
  }
  function valueAt(runs, pfn) { const i = upper(runs[0], pfn); return i < runs[1].length ? runs[1][i] : null; }
  let infoToken = 0;
  function showInfo(hv) {  // resolves when the panel is complete (state.info: for tests)
    const waits = [];
    state.info = fillInfo(hv, waits).then(() => Promise.all(waits));
    return state.info;
  }
  async function fillInfo(hv, waits) {
    const my = ++infoToken;
    for (const m of maps) {
      const fi = m.frameAt(STEPS[state.step][m.index]), pfn = hv.pfn, K = hv.K;
      const box = m.info, lines = [];
      const draw = await m.draw(fi);
      const ci = upper(draw.ends, pfn), cls = ci < draw.cls.length ? draw.cls[ci] : m.cls.hole;
      const ps = m.d.page_size;
      if (m.d.cell) {
        const c = m.d.cell, row = m.lay.row_pages;
        const block = Math.floor(pfn / (row * c)) * (row / c) + Math.floor((pfn % (row * c)) % row / c);
        const addr = block * c * c * ps;
        lines.push(['block', block.toLocaleString('en') + ' at 0x' + addr.toString(16)], ['state', m.cls.names[cls]]);
      } else {
        const st = m.d.streams, v = await m.valueAt('runs', 0, fi, pfn), row = v === null ? null : m.d.flags[v];
        lines.push(['PFN', '0x' + pfn.toString(16) + '  (' + pfn + ')'],
          ['address', '0x' + (pfn * ps).toString(16)],
          ['zone', zoneOf(m, pfn, 'zone') || '-'], ['node', zoneOf(m, pfn, 'node') || 'node 0'],
          ['class', m.cls.names[cls]]);
        const bi = m.lay.tiles.findIndex((t) => t.kind === 'band' && t.first_pfn <= pfn && pfn < t.first_pfn + t.pages);
        if (bi >= 0) lines.push(['band', m.lay.about[bi]], ['pixel', 'collapsed: zoom in (or double-click) to unfold']);
        else if (K > 1) lines.push(['pixel', K + ' pages from here; zoom in for one page']);
        if (row) lines.push(['flags', row[0]], ['symbolic', row[1]], ['long', row[2] || '(none)'],
          ['raw', row[3] + ' ' + (row[4] || '(none)')]);
        if (st.includes('cgroup')) { const cg = await m.valueAt('runs', 4 * st.indexOf('cgroup'), fi, pfn); lines.push(['cgroup', cg === null ? '-' : m.d.cgroups[cg]]); }
        if (st.includes('workload')) lines.push(['workload', (await m.valueAt('runs', 4 * st.indexOf('workload'), fi, pfn)) ? 'maps it' : 'does not map it']);
      }
      lines.push(['since', '…']);
      if (my !== infoToken) return;
      box.textContent = '';
      delete box.dataset.since;
      el('div', 'ihead', (maps.length > 1 ? m.d.name + ': ' : '') + (state.pinned ? 'pinned (Esc: unpin)' : 'hover') +
        ' at frame ' + m.d.frames[fi].pos, box);
      const tbl = el('table', '', null, box);
      for (const [k, v] of lines) { const tr = el('tr', '', null, tbl); el('th', '', k, tr); el('td', 'k-' + k, v, tr); }
      const sinceCell = tbl.querySelector('.k-since');
      waits.push(m.since(fi, pfn).then((j) => {
        if (my !== infoToken) return;
        sinceCell.textContent = 'frame ' + m.d.frames[j].pos + (j === 0 ? ' (the first shown)' : '') + ' in this class';
        box.dataset.since = String(m.d.frames[j].pos);
        placeHover(hv);
      }));
      if (!m.d.cell) {
        const cmd = 'pvrec list ' + m.d.path + '@' + m.d.frames[fi].pos + ' -a ' + pfn;
        const line = el('div', 'cmd', null, box);
        const code = el('code', '', cmd, line);
        const b = el('button', '', 'copy', line);
        b.addEventListener('click', () => {
          const done = () => { b.textContent = 'copied'; };
          if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(cmd).then(done, () => select(code));
          else select(code);
        });
      }
    }
    hoverBox.hidden = false;
    hoverBox.classList.toggle('pinned', !!state.pinned);
    placeHover(hv);
  }
  // The panel beside the hovered (pinned) pixel, inside the window and never over the pixel:
  // right of it, else left, below, above (the first that fits; else clamped into the window).
  function placeHover(hv) {
    if (hoverBox.hidden) return;
    const m = maps[hv.side], p = screenOf(m, hv.pfn), c = m.canvas.getBoundingClientRect();
    if (!p) return;
    const sc = c.width / m.canvas.width, px = c.left + p[0] * sc, py = c.top + p[1] * sc;
    const half = ((Math.max(lv().mag, 3) + 2) / 2) * sc + 14, bw = hoverBox.offsetWidth, bh = hoverBox.offsetHeight;
    const W = document.documentElement.clientWidth, H = window.innerHeight, E = 4;
    const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));
    const vy = clamp(py - 24, E, H - bh - E), vx = clamp(px - bw / 2, E, W - bw - E);
    const spots = [[px + half, vy], [px - half - bw, vy], [vx, py + half], [vx, py - half - bh]];
    const inside = ([x, y]) => x >= E && y >= E && x + bw <= W - E && y + bh <= H - E;
    const [x, y] = spots.find(inside) || [clamp(spots[0][0], E, W - bw - E), vy];
    hoverBox.style.left = Math.round(x) + 'px'; hoverBox.style.top = Math.round(y) + 'px';
  }
  function hideInfo() { infoToken++; hoverBox.hidden = true; state.info = Promise.resolve(); }
  function select(node) { const r = document.createRange(); r.selectNodeContents(node); const s = getSelection(); s.removeAllRanges(); s.addRange(r); }
  // ---------------------------------------------------------------- input
  function setStep(k) {
    state.step = ((k % STEPS.length) + STEPS.length) % STEPS.length;
    return render();
  }
  let timer = null;
  function play(on) {
    state.playing = on;
    playBtn.textContent = on ? '\u275A\u275A pause' : '\u25B6 play';
    clearTimeout(timer);
    if (!on) return;
    const tick = async () => {
      const t0 = performance.now();
      await setStep(state.step + 1);
      if (state.playing) timer = setTimeout(tick, Math.max(0, 1000 / state.fps - (performance.now() - t0)));
    };
    tick();
  }
  playBtn.addEventListener('click', () => play(!state.playing));
  backBtn.addEventListener('click', () => { play(false); setStep(state.step - 1); });
  fwdBtn.addEventListener('click', () => { play(false); setStep(state.step + 1); });
  speedSel.addEventListener('change', () => { state.fps = Number(speedSel.value); });
  zoomIn.addEventListener('click', () => setLevel(state.level + 1));
  zoomOut.addEventListener('click', () => setLevel(state.level - 1));
  fitBtn.addEventListener('click', fit);
  document.addEventListener('keydown', (e) => {
    if (e.target instanceof HTMLSelectElement) return;
    if (e.key === ' ') { e.preventDefault(); play(!state.playing); }
    else if (e.key === 'ArrowRight') { play(false); setStep(state.step + 1); }
    else if (e.key === 'ArrowLeft') { play(false); setStep(state.step - 1); }
    else if (e.key === '+' || e.key === '=') setLevel(state.level + 1);
    else if (e.key === '-' || e.key === '_') setLevel(state.level - 1);
    else if (e.key === 'Home') { e.preventDefault(); play(false); setStep(0); }
    else if (e.key === 'End') { e.preventDefault(); play(false); setStep(STEPS.length - 1); }
    else if (e.key === '?') help.hidden = !help.hidden;
    else if (e.key === 'Escape') {
      help.hidden = true;
      if (state.pinned) { state.pinned = null; if (!state.hover) hideInfo(); render(); }
    }
  });
  helpBtn.addEventListener('click', () => { help.hidden = !help.hidden; });
  window.addEventListener('scroll', () => { const hv = state.pinned || state.hover; if (hv) placeHover(hv); });
  for (const m of maps) {
    const cv = m.canvas, pointers = new globalThis.Map();
    let drag = null, pinch = null;
    const local = (e) => { const b = cv.getBoundingClientRect(); return [(e.clientX - b.left) * cv.width / b.width, (e.clientY - b.top) * cv.height / b.height]; };
    const rehover = (x, y) => {  // after a zoom: the panel tells of what is under the pointer now
      const at = pfnAt(m, x, y);
      state.hover = at ? { side: m.index, pfn: at.pfn, K: at.K } : null;
      if (!state.pinned && at) { showInfo(state.hover); render(); }
    };
    cv.addEventListener('wheel', (e) => {
      e.preventDefault();
      const [x, y] = local(e);
      setLevel(state.level + (e.deltaY < 0 ? 1 : -1), x, y).then(() => rehover(x, y));
    }, { passive: false });
    cv.addEventListener('dblclick', (e) => {  // zoom in there; on a band, unfold it
      const [x, y] = local(e), at = pfnAt(m, x, y);
      setLevel(Math.max(state.level, at && at.band !== undefined ? state.fitLevel : state.level) + 1, x, y, true)
        .then(() => rehover(x, y));
    });
    cv.addEventListener('pointerdown', (e) => {
      pointers.set(e.pointerId, local(e)); cv.setPointerCapture(e.pointerId);
      if (pointers.size === 2) { const [a, b] = [...pointers.values()]; pinch = Math.hypot(a[0] - b[0], a[1] - b[1]); drag = null; }
      else drag = { x: e.clientX, y: e.clientY, ox: state.ox, oy: state.oy, moved: false };
    });
    cv.addEventListener('pointermove', (e) => {
      const [x, y] = local(e);
      if (pointers.has(e.pointerId)) pointers.set(e.pointerId, [x, y]);
      if (pinch && pointers.size === 2) {
        const [a, b] = [...pointers.values()], d = Math.hypot(a[0] - b[0], a[1] - b[1]);
        if (d > pinch * 1.3 || d < pinch / 1.3) { setLevel(state.level + (d > pinch ? 1 : -1), (a[0] + b[0]) / 2, (a[1] + b[1]) / 2); pinch = d; }
        return;
      }
      if (drag) {
        const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        if (drag.moved) { state.fitted = false; state.ox = drag.ox + dx; state.oy = drag.oy + dy; render(); return; }
      }
      const at = pfnAt(m, x, y);
      state.hover = at ? { side: m.index, pfn: at.pfn, K: at.K } : null;
      if (!state.pinned && at) { showInfo(state.hover); render(); }
    });
    const up = (e) => {
      pointers.delete(e.pointerId);
      if (pointers.size < 2) pinch = null;
      if (drag && !drag.moved) {
        const [x, y] = local(e), at = pfnAt(m, x, y);
        state.pinned = at && !(state.pinned && state.pinned.pfn === at.pfn) ? { side: m.index, pfn: at.pfn, K: at.K } : null;
        if (at) showInfo(state.pinned || { side: m.index, pfn: at.pfn, K: at.K });
        render();
      }
      drag = null;
    };
    cv.addEventListener('pointerleave', () => {  // off the map: the panel goes, unless pinned
      state.hover = null;
      if (!state.pinned) { hideInfo(); render(); }
    });
    cv.addEventListener('pointerup', up);
    cv.addEventListener('pointercancel', up);
    const scrub = (e) => {
      const b = m.strip.getBoundingClientRect(), f = (e.clientX - b.left) / b.width;
      const fr = m.d.frames, t0 = fr[0].t, t = t0 + Math.max(0, Math.min(1, f)) * (fr[fr.length - 1].t - t0);
      let fi = 0;  // the frame nearest in time to the click, as the strip draws it
      while (fi + 1 < fr.length && (fr[fi].t + fr[fi + 1].t) / 2 <= t) fi++;
      const pos = fr[fi].pos;
      let k = STEPS.findIndex((s) => s[m.index] >= pos);
      if (k < 0) k = STEPS.length - 1;
      play(false); setStep(k);
    };
    m.strip.addEventListener('pointerdown', (e) => { m.strip.setPointerCapture(e.pointerId); scrub(e); m.scrubbing = true; });
    m.strip.addEventListener('pointermove', (e) => { if (m.scrubbing) scrub(e); });
    m.strip.addEventListener('pointerup', () => { m.scrubbing = false; });
  }
  window.addEventListener('resize', () => { if (arrange() && state.fitted) fit(); else render(); });

  // For tests and scripts: the same rule the canvas uses, and where a page is drawn.
  window.pvrec = {
    data: DATA, state, levels: LEVELS, setStep, fit,
    setZoom(K, mag) {  // the level, the layout kept unless it is the whole-machine view or coarser
      const i = LEVELS.findIndex((L) => L.K === K && L.mag === (mag || 1));
      state.level = i;
      state.fitted = false;
      if (i <= state.fitLevel) useLayout(false);
      return render();
    },
    screenOf(side, pfn) { return screenOf(maps[side], pfn); },
    pfnAt(side, x, y) { return pfnAt(maps[side], x, y); },
    unfold(on) { useLayout(on); return render(); },  // the layout without bands (or with)
    centerOn(side, pfn) {  // pan so that pfn's pixel is in the middle of the canvas
      const c = maps[side].canvas, p = screenOf(maps[side], pfn);
      state.fitted = false;
      if (p) { state.ox += Math.round(c.width / 2 - p[0]); state.oy += Math.round(c.height / 2 - p[1]); }
      return render();
    },
    async pixels(side, pos, K) {
      const m = maps[side], fr = await m.draw(m.frameAt(pos)), n = Math.ceil(m.lay.pfn_count / K);
      const got = pixelsOf(fr, K, 0, n, m.cls.hole);
      return { px: Array.from(got.px), partly: Array.from(got.partly) };
    },
    info(side) { return maps[side].info.textContent; },
    rendered: async () => { await ready; return render(); },
    extent(side) { return extent(maps[side], lv()); },  // the map's box on the canvas (tiles and labels)
    layout(side) { return maps[side].lay; },  // the layout drawn, arranged in the grid in use
    zoneLabels(side) { return maps[side].labelsDrawn || []; },
  };
  const ready = (async () => {  // the strip's note decides the height left: fit again with it
    arrange();
    await fit();
    if (arrange()) await fit();
    document.body.dataset.ready = '1';
  })();
})();
