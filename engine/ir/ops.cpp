#include "engine/ir/ops.h"

namespace osprey::ir {

const char* op_name(Op op) {
  switch (op) {
    case Op::INPUT: return "input";
    case Op::TENSOR: return "tensor";
    case Op::GET_ROWS: return "get_rows";
    case Op::MATMUL: return "matmul";
    case Op::ADD: return "add";
    case Op::MUL: return "mul";
    case Op::SCALE: return "scale";
    case Op::RMS_NORM: return "rms_norm";
    case Op::LAYER_NORM: return "layer_norm";
    case Op::ROPE: return "rope";
    case Op::SILU: return "silu";
    case Op::GELU: return "gelu";
    case Op::GELU_ERF: return "gelu_erf";
    case Op::SWIGLU: return "swiglu";
    case Op::GEGLU: return "geglu";
    case Op::SOFTMAX: return "softmax";
    case Op::KV_STORE: return "kv_store";
    case Op::ATTENTION: return "attention";
    case Op::RESHAPE: return "reshape";
    case Op::VIEW_ROWS: return "view_rows";
    case Op::COUNT: break;
  }
  return "?";
}

}  // namespace osprey::ir
