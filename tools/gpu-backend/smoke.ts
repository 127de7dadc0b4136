/**
 * Smoke test of a GPU runtime: `node --import tsx tools/gpu-backend/smoke.ts <onnxruntime-node dir>`,
 * with LD_LIBRARY_PATH naming its NVIDIA libraries. Exits 0 after x + 1 ran on the CUDA provider.
 */
import { probeCudaProvider } from '../../engine/onnx/cuda-probe';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: smoke.ts <onnxruntime-node package dir>');
  process.exit(2);
}
probeCudaProvider(dir).then(
  (line) => console.log(line),
  (err: unknown) => {
    console.error((err instanceof Error ? err.message : String(err)).split('\n')[0]);
    process.exit(1);
  },
);
