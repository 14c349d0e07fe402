/* Compile check: the implementation in one translation unit ... */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
