/* SwiftPM needs one source file per C target; the headers are all this target provides. */
#include "CKVDSystem.h"
