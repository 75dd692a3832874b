import { defineParitySuite } from './parity-suite';

defineParitySuite('wasm');
