import { defineParitySuite } from './parity-suite';

defineParitySuite('cpu');
