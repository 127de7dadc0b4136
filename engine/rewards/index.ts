/**
 * Reward models: the contract (reward-model), the detector alignment score, the learned world
 * preference model and ONNX-exported models.
 *
 *   const reward = new DetectorReward();
 *   const scores = await reward.score(images, prompts);
 *   const id = rewardModelIdentity(reward); // stored with every artifact built from the scores
 */
export * from './reward-model';
export { DetectorReward, DETECTOR_REWARD_VERSION } from './detector-reward';
export type { DetectorRewardOptions, MetadataLookup } from './detector-reward';
export { parseWorldPrompt, UnknownPromptError } from '../world/world-prompts';
export {
  PreferenceModel,
  PREFERENCE_LR,
  PreferenceWeightsError,
  checkPreferenceWeights,
  defaultPreferenceConfig,
  loadPreferenceModel,
  pairwiseAccuracy,
  preferencePairsFromRows,
  savePreferenceModel,
  trainPreferenceModel,
  worldVocabulary,
} from './preference-model';
export type { PreferenceModelConfig, PreferencePair, TrainOptions, TrainResult } from './preference-model';
export { pretrainPreferenceModel } from './preference-pretraining';
export type { PretrainOptions, PretrainResult } from './preference-pretraining';
export { OnnxReward, OnnxContractError } from './onnx-reward';
export type { OnnxRewardConfig, PromptTokenizer } from './onnx-reward';
export {
  ClipOnnxReward,
  ClipRewardFolderError,
  clipPreprocess,
  parsePreprocessorConfig,
  pilResize,
} from './clip-onnx-reward';
export type { ClipOnnxRewardOptions, ClipPreprocessConfig } from './clip-onnx-reward';
