export {
  ParameterSet,
  ParameterShapeError,
  countParameters,
  tfShape,
  toDiffusersLayout,
  fromDiffusersLayout,
  initialValues,
  type ParamSpec,
  type ParamKind,
  type ParamReader,
  type WeightLayout,
} from './params';
export * from './layers';
