/**
 * Preloaded into elasticdump (node -r) by bench/copy.ts. The Elasticsearch integ-test zips that the local
 * servers come from lack the rest-root module, so `GET /` answers 405 and elasticdump refuses to start. This
 * answers its version probe with what a full distribution's `GET /` would say (BENCH_ES_VERSION); every other
 * request of elasticdump goes to the server unchanged.
 */
const path = require('node:path');

const version = process.env.BENCH_ES_VERSION;
const base = path.join(process.env.BENCH_ELASTICDUMP_DIR, 'lib/transports/__es__/_base.js');
if (version) {
  const Base = require(base);
  Base.prototype.version = function probeVersion(_prefix, callback) {
    this.ESFullversion = version;
    this.ESversion = version.split('.')[0];
    this.ESDistribution = 'elasticsearch';
    this.DistributionVersion = version;
    this.IsOpenSearch = false;
    this.setSearchBody();
    callback();
  };
}
