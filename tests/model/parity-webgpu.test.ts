// WebGPU in Node through Dawn on SwiftShader: needs VK_ICD_FILENAMES and LD_LIBRARY_PATH (npm run test:unit sets them).
import { useNodeWebGPU } from '../helpers/node-webgpu';
import { defineParitySuite } from './parity-suite';

defineParitySuite('webgpu', useNodeWebGPU);
