// Stands in for node-fetch in the packed (portable) bench: tfjs-core's Node platform requires it only to fetch
// over HTTP, which the bench never does, and Node 20 has fetch built in. node-fetch brings whatwg-url and tr46's
// Unicode tables (~0.35 MB of the bundle); bench/pack.sh aliases the package to this file (see tfjs-core-only.ts).
module.exports = (...args) => globalThis.fetch(...args);
