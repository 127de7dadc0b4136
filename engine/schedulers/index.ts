/**
 * Noise schedule and samplers.
 *
 * Sampling the replay buffer (docs/algorithm.md section 1): DPM-Solver++ on per-sample perturbed grids,
 * guidance 1, recording (t_i, x_{t_i}, eps_i) for every step of every sample.
 *
 * ```ts
 * const schedule = new NoiseSchedule(); // SD1.5 betas, linspace spacing
 * const solver = new DpmSolverPlusPlus(schedule); // order 2, midpoint, final sigma 0
 * const { grids } = perturbedTimesteps(20, batch, rng); // 950+o_b, 900+o_b, ..., o_b
 * const xT = rng.normalTensor([batch, h, w, 4]) as tf.Tensor4D;
 * const result = await solver.sample({ model: (x, t, c) => unet.predict(x, t, c), xT, grids, cond });
 * const perSample = await trajectoryToArrays(result); // timesteps, latents, eps, x0 per sample
 * disposeSampleResult(result);
 * ```
 */
export * from './ddpm-schedule';
export * from './timesteps';
export * from './sampling';
export * from './dpm-solver';
export * from './ddim';
export * from './ddpm-ancestral';
