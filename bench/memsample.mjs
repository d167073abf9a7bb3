// Preloaded into the CLI by bench/copy.ts's `+mem` modifier: samples process.memoryUsage() every 50 ms and, at
// exit, prints one line `memsample {...}` to stderr with the sample of the highest RSS and each field's maximum,
// so a peak RSS can be split into V8 heap, array buffers and the rest (code, stacks, allocator slack).
const peak = { rss: 0 };
const max = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
const mb = (n) => Math.round(n / 1048576);
const timer = setInterval(() => {
  const m = process.memoryUsage();
  if (m.rss > peak.rss) Object.assign(peak, m);
  for (const k of Object.keys(max)) if (m[k] > max[k]) max[k] = m[k];
}, 50);
timer.unref();
process.on('exit', () => {
  const fmt = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, mb(v)]));
  process.stderr.write(`memsample ${JSON.stringify({ atPeakRss: fmt(peak), max: fmt(max) })}\n`);
});
