# Declarations of csrc/pyrmsprop.h (kept in step with it).

cdef extern from "pyrmsprop.h" nogil:
    enum:
        PRM_MAXIMIZE
        PRM_WEIGHT_DECAY
        PRM_CENTERED
        PRM_MOMENTUM
        PRM_EPS_IN_SQRT
        PRM_DECOUPLED
        PRM_AMSGRAD
        PRM_NESTEROV
        PRM_FIRST_STEP
        PRM_NO_PREFETCH
        PRM_EMA
        PRM_RMSPROP
        PRM_ADAM
        PRM_SGD
        PRM_TOUCH
        PRM_F32
        PRM_F64
        PRM_BF16
        PRM_F16
        PRM_Q8
        PRM_MASTER_NONE
        PRM_MASTER_FP32
        PRM_MASTER_SPLIT
        PRM_MASTER_KAHAN
        PRM_MASTER_STOCHASTIC
        PRM_MAX_ARRAYS
        PRM_NTARGETS

    ctypedef struct prm_ema_params:
        double beta, one_minus_beta

    ctypedef struct prm_touch_params:
        int flags

    ctypedef struct prm_rmsprop_params:
        int flags
        double lr, alpha, one_minus_alpha, eps, weight_decay, momentum

    ctypedef struct prm_adam_params:
        int flags
        double beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay
        double step_size, bc2_sqrt, decay

    ctypedef struct prm_sgd_params:
        int flags
        double lr, momentum, one_minus_dampening, weight_decay

    ctypedef struct prm_job:
        int rule
        int dtype
        int state
        int master
        unsigned long long seed, step
        Py_ssize_t ntensors
        char **ptrs
        const Py_ssize_t *lens
        const void *params

    void prm_run(const prm_job *job) noexcept
    int prm_job_supported(const prm_job *job) noexcept
    unsigned prm_q8_unsigned_slots(int rule) noexcept
    void prm_q8_quantize(const float *x, Py_ssize_t n, unsigned char *codes, float *absmax,
                         int is_unsigned) noexcept
    void prm_q8_dequantize(const unsigned char *codes, const float *absmax, Py_ssize_t n,
                           float *out, int is_unsigned) noexcept
    const unsigned int *prm_q8_map(int is_unsigned) noexcept
    int prm_any_nonfinite(int dtype, char **ptrs, const Py_ssize_t *lens,
                          Py_ssize_t ntensors) noexcept

    int prm_target_compiled(int target) noexcept
    int prm_target_supported(int target) noexcept
    int prm_target_best() noexcept
    int prm_target_current() noexcept
    void prm_set_target(int target) noexcept
    void prm_set_rule_target(int rule, int dtype, int target) noexcept
    int prm_rule_target(int rule, int dtype) noexcept
    void prm_run_serial_on(int target, const prm_job *job) noexcept
    const char *prm_target_note() noexcept
    const char *prm_target_name(int target) noexcept
    const char *prm_compiler() noexcept
    const char *prm_cpu_name() noexcept
    int prm_hw_conversions_supported() noexcept
    int prm_hw_conversions() noexcept
    int prm_set_hw_conversions(int mask) noexcept

    void prm_set_num_threads(int n) noexcept
    int prm_get_num_threads() noexcept
    void prm_set_thread_threshold(Py_ssize_t elems) noexcept
    Py_ssize_t prm_get_thread_threshold() noexcept
    Py_ssize_t prm_split_elems(int rule, int dtype) noexcept
    const char *prm_thread_mode() noexcept
    Py_ssize_t prm_chunk_elems() noexcept
