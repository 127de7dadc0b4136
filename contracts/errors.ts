/**
 * Failure types that no retry can fix, spelled once: workflows list them as non-retryable and
 * cannot import the modules that throw them (those do I/O), so the names live here.
 */

/** storage/errors.ts: a bad URI, corrupt bytes, a missing artifact or bucket, refused credentials. */
export const STORE_PERMANENT_ERRORS = [
  'InvalidArtifactUriError',
  'DigestMismatchError',
  'ArtifactNotFoundError',
  'BucketNotFoundError',
  'StoreAccessDeniedError',
  'ArtifactExistsError',
] as const;

/** Engine errors about inputs or numerics; their class name is the failure type. */
export const ENGINE_PERMANENT_ERRORS = [
  'NonFiniteTrainingError',
  'TrainingInputError',
  'ModelBundleError',
  'SafetensorsError',
  'NonFiniteTensorError',
  'PickapicRowError',
  'PickapicFileError',
  'FolderImportError',
  'ExpertRankingError',
  'ShardStoreError',
  'OnnxContractError',
  'ClipRewardFolderError',
  'PreferenceWeightsError',
  'UnknownPromptError',
  'UnscorableImageError',
  'ImageDecodeError',
  'ImageTooSmallError',
  'TokenizerError',
  'EvalSuiteError',
  'MetadataParseError',
  'ScheduleError',
  'ParameterShapeError',
  'BackendUnavailableError',
  'InferenceRuntimeError',
  'LayoutError',
  'DiffusersFolderError',
  'StudyImportError',
  'RangeError',
] as const;

/** Activity input checks of the pipeline stages. */
export const PIPELINE_PERMANENT_ERRORS = ['PipelineBadInput', 'PipelineSourceNotFound'] as const;

export const NON_RETRYABLE_ERROR_TYPES: readonly string[] = [
  ...PIPELINE_PERMANENT_ERRORS,
  ...ENGINE_PERMANENT_ERRORS,
  ...STORE_PERMANENT_ERRORS,
];
