// JavaScript twin of edgematting/imageops.py (the reference photo pipeline and the comic
// effect). JavaScript numbers are float64; every float32 operation of the reference is
// reproduced as one float64 operation rounded with Math.fround. For + - * / and sqrt of
// float32 operands that double rounding gives exactly the IEEE float32 result, so these
// functions agree with numpy bit for bit (tested against Python golden vectors by
// test/golden.test.mjs). Images are interleaved row-major arrays [y][x][c].
//
// No DOM here: this module runs in the browser and in Node.

const f = Math.fround;

/** imageops._axis_weights: half-pixel centres, edges clamped (tf.image.resize bilinear). */
export function axisWeights(inSize, outSize) {
  if (!(inSize > 0 && outSize > 0)) throw new RangeError(`sizes must be positive: ${inSize} -> ${outSize}`);
  const scale = f(inSize / outSize);
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const w1 = new Float32Array(outSize);
  for (let j = 0; j < outSize; j++) {
    let src = f(f(f(j + 0.5) * scale) - 0.5);
    if (src < 0) src = 0;
    let a = Math.floor(src);
    if (a > inSize - 1) a = inSize - 1;
    i0[j] = a;
    i1[j] = Math.min(a + 1, inSize - 1);
    w1[j] = f(src - a);
  }
  return { i0, i1, w1 };
}

/**
 * imageops.resize_bilinear on an interleaved HxWxC image (any array-like of numbers):
 * top = a*(1-wx) + b*wx, bottom likewise, out = top*(1-wy) + bottom*wy. -> Float32Array.
 */
export function resizeBilinear(src, h, w, c, outH, outW) {
  checkLength(src, h * w * c, 'src');
  const ay = axisWeights(h, outH);
  const ax = axisWeights(w, outW);
  const out = new Float32Array(outH * outW * c);
  let o = 0;
  for (let y = 0; y < outH; y++) {
    const r0 = ay.i0[y] * w * c;
    const r1 = ay.i1[y] * w * c;
    const wy = ay.w1[y];
    const omwy = f(1 - wy);
    for (let x = 0; x < outW; x++) {
      const c0 = ax.i0[x] * c;
      const c1 = ax.i1[x] * c;
      const wx = ax.w1[x];
      const omwx = f(1 - wx);
      for (let k = 0; k < c; k++) {
        const top = f(f(src[r0 + c0 + k] * omwx) + f(src[r0 + c1 + k] * wx));
        const bot = f(f(src[r1 + c0 + k] * omwx) + f(src[r1 + c1 + k] * wx));
        out[o++] = f(f(top * omwy) + f(bot * wy));
      }
    }
  }
  return out;
}

/** imageops.round_to_uint8 for one value: floor(x + 0.5) clipped to [0, 255] (NaN -> 0). */
export function roundToUint8(x) {
  const r = Math.floor(f(x + 0.5));
  if (!(r >= 0)) return 0;
  return r > 255 ? 255 : r;
}

/** RGBA bytes (canvas ImageData.data) -> interleaved RGB Float32Array; alpha ignored. */
export function rgbaToRgb(rgba, w, h) {
  checkLength(rgba, w * h * 4, 'rgba');
  const out = new Float32Array(w * h * 3);
  for (let i = 0, o = 0; i < w * h; i++) {
    out[o++] = rgba[i * 4];
    out[o++] = rgba[i * 4 + 1];
    out[o++] = rgba[i * 4 + 2];
  }
  return out;
}

/** imageops.alpha_to_photo: model alpha (h x w) -> photo size, clipped to [0, 1]. */
export function alphaToPhoto(alpha, h, w, photoW, photoH) {
  const r = resizeBilinear(alpha, h, w, 1, photoH, photoW);
  for (let i = 0; i < r.length; i++) r[i] = Math.min(Math.max(r[i], 0), 1);
  return r;
}

/**
 * imageops.box_blur: separable box blur, edges clamped, `passes` times (rows then columns).
 * Running sums in float64 in numpy's cumsum order, then (hi - lo) / k rounded to float32.
 */
export function boxBlur(img, h, w, c, radius, passes = 3) {
  checkLength(img, h * w * c, 'img');
  let x = Float32Array.from(img);
  if (radius <= 0) return x;
  const k = 2 * radius + 1;
  const cs = new Float64Array(Math.max(h, w) + 2 * radius + 1);
  let tmp = new Float32Array(h * w * c);
  for (let pass = 0; pass < passes; pass++) {
    for (let xx = 0; xx < w; xx++) {
      for (let ch = 0; ch < c; ch++) blurLine(x, tmp, xx * c + ch, w * c, h, radius, k, cs);
    }
    [x, tmp] = [tmp, x];
    for (let yy = 0; yy < h; yy++) {
      for (let ch = 0; ch < c; ch++) blurLine(x, tmp, yy * w * c + ch, c, w, radius, k, cs);
    }
    [x, tmp] = [tmp, x];
  }
  return x;
}

function blurLine(src, dst, base, stride, n, radius, k, cs) {
  const padded = n + 2 * radius + 1;
  let s = 0;
  for (let p = 0; p < padded; p++) {
    let i = p - (radius + 1);
    if (i < 0) i = 0;
    else if (i > n - 1) i = n - 1;
    s += src[base + i * stride];
    cs[p] = s;
  }
  for (let i = 0; i < n; i++) dst[base + i * stride] = (cs[k + i] - cs[i]) / k;
}

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** imageops.default_blur_radius: max(1, round(min(h, w) / 40)). */
export function defaultBlurRadius(h, w) {
  return Math.max(1, roundHalfEven(Math.min(h, w) / 40));
}

/**
 * imageops.composite: round(alpha * fg + (1 - alpha) * bg) -> RGBA bytes (opaque).
 * fg: RGBA bytes (stride 4) or RGB floats (stride 3); bg: [r, g, b] or an RGB float array
 * of the same size (resize an image background with resizeBilinear first).
 */
export function composite(fg, fgStride, alpha, w, h, bg, out = new Uint8ClampedArray(w * h * 4)) {
  const n = w * h;
  checkLength(alpha, n, 'alpha');
  checkLength(fg, n * fgStride, 'foreground');
  const colour = bg.length === 3;
  if (!colour) checkLength(bg, n * 3, 'background');
  for (let i = 0; i < n; i++) {
    const a = alpha[i];
    const oma = f(1 - a);
    for (let k = 0; k < 3; k++) {
      const b = colour ? bg[k] : bg[i * 3 + k];
      out[i * 4 + k] = roundToUint8(f(f(a * fg[i * fgStride + k]) + f(oma * b)));
    }
    out[i * 4 + 3] = 255;
  }
  return out;
}

/** imageops.rgba_cutout: the photo with round(alpha * 255) as its alpha channel. */
export function rgbaCutout(fg, fgStride, alpha, w, h, out = new Uint8ClampedArray(w * h * 4)) {
  const n = w * h;
  checkLength(alpha, n, 'alpha');
  checkLength(fg, n * fgStride, 'foreground');
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 3; k++) out[i * 4 + k] = roundToUint8(fg[i * fgStride + k]);
    out[i * 4 + 3] = roundToUint8(f(alpha[i] * 255));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// edge-aware upsampling of the alpha: the fast guided filter (imageops.GuidedFilter,
// luminance01, box_mean, guided_upsample; the Android core's GuidedFilter.java)
// ---------------------------------------------------------------------------------------
/** imageops.GuidedFilter's defaults (measured on trained models): radius 2 model pixels, eps 1e-4. */
export const GUIDED_DEFAULTS = Object.freeze({ radius: 2, eps: 1e-4 });

/** imageops.GuidedFilter's checks: radius an integer >= 1, eps positive and finite as float32. */
export function checkGuidedFilter(radius, eps) {
  if (!Number.isInteger(radius) || radius < 1) throw new RangeError(`guided filter radius must be an integer >= 1, got ${radius}`);
  const e = typeof eps === 'number' ? f(eps) : NaN;
  if (!(Number.isFinite(e) && e > 0)) throw new RangeError(`guided filter eps must be a positive finite number (as float32), got ${eps}`);
  return { radius, eps: e };
}

/**
 * imageops.luminance01 of an image with `stride` values per pixel (3: RGB floats, 4: RGBA
 * bytes; the first three are R, G, B): ((0.299 R + 0.587 G) + 0.114 B) / 255 in float32.
 */
export function luminance01(img, n, stride = 3) {
  checkLength(img, n * stride, 'img');
  const cr = f(0.299), cg = f(0.587), cb = f(0.114);
  const out = new Float32Array(n);
  for (let i = 0, p = 0; i < n; i++, p += stride) {
    out[i] = f(f(f(f(cr * img[p]) + f(cg * img[p + 1])) + f(cb * img[p + 2])) / 255);
  }
  return out;
}

/**
 * imageops.box_mean: mean over the (2r+1)^2 window clipped to the image (divided by the
 * number of in-image pixels), h x w floats. Axis 0 then axis 1; along each, float64 running
 * sums c[0] = 0, c[k] = c[k-1] + x[k-1], then float32((c[hi] - c[lo]) / (hi - lo)).
 */
export function boxMean(src, h, w, radius) {
  checkLength(src, h * w, 'src');
  const tmp = new Float32Array(h * w);
  const out = new Float32Array(h * w);
  const cs = new Float64Array(Math.max(h, w) + 1);
  for (let x = 0; x < w; x++) boxMeanLine(src, tmp, x, w, h, radius, cs);
  for (let y = 0; y < h; y++) boxMeanLine(tmp, out, y * w, 1, w, radius, cs);
  return out;
}

function boxMeanLine(src, dst, base, stride, n, r, cs) {
  let s = 0;
  cs[0] = 0;
  for (let i = 0; i < n; i++) {
    s += src[base + i * stride];
    cs[i + 1] = s;
  }
  for (let i = 0; i < n; i++) {
    const lo = i - r > 0 ? i - r : 0;
    const hi = (i + r < n - 1 ? i + r : n - 1) + 1;
    dst[base + i * stride] = (cs[hi] - cs[lo]) / (hi - lo); // Float32Array stores round to float32
  }
}

/**
 * imageops.guided_upsample: the model's alpha (h x w, decoded, not yet clipped) -> an
 * edge-aware alpha at the photo's size (photoW x photoH), guided by the photo's luminance.
 * `photo`: photoW x photoH pixels, `stride` values each (4: RGBA bytes, 3: RGB floats).
 *
 *   p = clip(alpha, 0, 1); I = luminance01(photo); I_lr = luminance01(resize(photo, h, w));
 *   at h x w: a = (box(I_lr p) - box(I_lr) box(p)) / ((box(I_lr I_lr) - box(I_lr)^2) + eps),
 *   b = box(p) - a box(I_lr); q = clip(resize(box(a)) * I + resize(box(b)), 0, 1).
 */
export function guidedUpsample(alphaLr, h, w, photo, stride, photoW, photoH, radius, eps) {
  const gf = checkGuidedFilter(radius, eps);
  const n = h * w;
  checkLength(alphaLr, n, 'alpha');
  checkLength(photo, photoW * photoH * stride, 'photo');
  const r = gf.radius;
  const e = gf.eps;
  const p = new Float32Array(n);
  for (let i = 0; i < n; i++) p[i] = Math.min(Math.max(alphaLr[i], 0), 1);
  const guide = luminance01(photo, photoW * photoH, stride);
  const guideLr = luminance01(resizeBilinear(photo, photoH, photoW, stride, h, w), n, stride);
  const ip = new Float32Array(n);
  const ii = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    ip[i] = f(guideLr[i] * p[i]);
    ii[i] = f(guideLr[i] * guideLr[i]);
  }
  const meanI = boxMean(guideLr, h, w, r);
  const meanP = boxMean(p, h, w, r);
  const corrIp = boxMean(ip, h, w, r);
  const corrIi = boxMean(ii, h, w, r);
  const a = new Float32Array(n);
  const b = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const varI = f(corrIi[i] - f(meanI[i] * meanI[i]));
    const covIp = f(corrIp[i] - f(meanI[i] * meanP[i]));
    a[i] = f(covIp / f(varI + e));
    b[i] = f(meanP[i] - f(a[i] * meanI[i]));
  }
  const bigA = resizeBilinear(boxMean(a, h, w, r), h, w, 1, photoH, photoW);
  const bigB = resizeBilinear(boxMean(b, h, w, r), h, w, 1, photoH, photoW);
  const q = bigA; // reused in place
  for (let i = 0; i < q.length; i++) {
    const v = f(f(bigA[i] * guide[i]) + bigB[i]);
    q[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return q;
}

// ---------------------------------------------------------------------------------------
// comic effect: imageops.edge_preserving_smooth, quantize_levels, outline_strength,
// comic_style, comic. Defaults are the Python constants (COMIC_*).
// ---------------------------------------------------------------------------------------
export const COMIC = Object.freeze({
  radius: 1, passes: 3, sigmaRange: 20.0, sigmaSpace: 1.0, levels: 6,
  edgeLow: 40.0, edgeHigh: 140.0, ink: 0.85,
});

/** imageops.edge_preserving_smooth: rational-kernel bilateral filter, HxWx3 floats. */
export function edgePreservingSmooth(img, h, w, radius = COMIC.radius, passes = COMIC.passes,
  sigmaRange = COMIC.sigmaRange, sigmaSpace = COMIC.sigmaSpace) {
  checkLength(img, h * w * 3, 'img');
  let x = Float32Array.from(img);
  let nx = new Float32Array(h * w * 3);
  const invR = f(1 / f(f(sigmaRange) * f(sigmaRange)));
  const invS = f(1 / f(f(sigmaSpace) * f(sigmaSpace)));
  const r = radius;
  const taps = [];
  for (let dy = -r; dy <= r; dy++) {
    for (let dx = -r; dx <= r; dx++) taps.push([dy, dx, f(f(dy * dy + dx * dx) * invS)]);
  }
  for (let pass = 0; pass < passes; pass++) {
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        const p = (y * w + xx) * 3;
        const pr = x[p], pg = x[p + 1], pb = x[p + 2];
        let nr = 0, ng = 0, nb = 0, den = 0;
        for (let t = 0; t < taps.length; t++) {
          const [dy, dx, ws] = taps[t];
          let yy = y + dy;
          yy = yy < 0 ? 0 : yy > h - 1 ? h - 1 : yy;
          let xn = xx + dx;
          xn = xn < 0 ? 0 : xn > w - 1 ? w - 1 : xn;
          const q = (yy * w + xn) * 3;
          const qr = x[q], qg = x[q + 1], qb = x[q + 2];
          const dr = f(qr - pr), dg = f(qg - pg), db = f(qb - pb);
          const d2 = f(f(f(dr * dr) + f(dg * dg)) + f(db * db));
          const wgt = f(1 / f(f(1 + f(d2 * invR)) + ws));
          nr = f(nr + f(wgt * qr));
          ng = f(ng + f(wgt * qg));
          nb = f(nb + f(wgt * qb));
          den = f(den + wgt);
        }
        nx[p] = f(nr / den);
        nx[p + 1] = f(ng / den);
        nx[p + 2] = f(nb / den);
      }
    }
    [x, nx] = [nx, x];
  }
  return x;
}

/** imageops.quantize_levels: floor(v / step + 0.5) * step, step = 255 / (levels - 1). */
export function quantizeLevels(img, levels = COMIC.levels) {
  const step = f(255 / (levels - 1));
  const out = new Float32Array(img.length);
  for (let i = 0; i < img.length; i++) out[i] = f(Math.floor(f(f(img[i] / step) + 0.5)) * step);
  return out;
}

/** imageops.luminance: (0.299 R + 0.587 G) + 0.114 B, float32. */
export function luminance(img, h, w) {
  const cr = f(0.299), cg = f(0.587), cb = f(0.114);
  const out = new Float32Array(h * w);
  for (let i = 0; i < h * w; i++) {
    out[i] = f(f(f(cr * img[i * 3]) + f(cg * img[i * 3 + 1])) + f(cb * img[i * 3 + 2]));
  }
  return out;
}

/** imageops.outline_strength: Sobel magnitude of luminance mapped to 0..1 between low and high. */
export function outlineStrength(img, h, w, low = COMIC.edgeLow, high = COMIC.edgeHigh) {
  const lum = luminance(img, h, w);
  const L = (y, x) => lum[(y < 0 ? 0 : y > h - 1 ? h - 1 : y) * w + (x < 0 ? 0 : x > w - 1 ? w - 1 : x)];
  const lo = f(low);
  const span = f(f(high) - lo);
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const gx = f(f(f(L(y - 1, x + 1) + f(2 * L(y, x + 1))) + L(y + 1, x + 1))
        - f(f(L(y - 1, x - 1) + f(2 * L(y, x - 1))) + L(y + 1, x - 1)));
      const gy = f(f(f(L(y + 1, x - 1) + f(2 * L(y + 1, x))) + L(y + 1, x + 1))
        - f(f(L(y - 1, x - 1) + f(2 * L(y - 1, x))) + L(y - 1, x + 1)));
      const mag = f(Math.sqrt(f(f(gx * gx) + f(gy * gy))));
      const e = f(f(mag - lo) / span);
      out[y * w + x] = e < 0 ? 0 : e > 1 ? 1 : e;
    }
  }
  return out;
}

/** imageops.comic_style: HxWx3 floats in 0..255 -> the comic-styled image (Float32Array). */
export function comicStyle(rgb, h, w) {
  const smooth = edgePreservingSmooth(rgb, h, w);
  const q = quantizeLevels(smooth);
  const e = outlineStrength(smooth, h, w);
  const ink = f(COMIC.ink);
  for (let i = 0; i < h * w; i++) {
    const m = f(1 - f(ink * e[i]));
    q[i * 3] = f(q[i * 3] * m);
    q[i * 3 + 1] = f(q[i * 3 + 1] * m);
    q[i * 3 + 2] = f(q[i * 3 + 2] * m);
  }
  return q;
}

/** imageops.comic: the photo (RGBA bytes) with the person in comic style -> RGBA bytes. */
export function comic(rgba, alpha, w, h) {
  const rgb = rgbaToRgb(rgba, w, h);
  return composite(comicStyle(rgb, h, w), 3, alpha, w, h, rgb);
}

export function checkLength(a, n, what) {
  if (!a || a.length !== n) {
    throw new RangeError(`${what} has ${a ? a.length : 'no'} values, expected ${n}`);
  }
}
