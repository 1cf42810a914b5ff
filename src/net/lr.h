/* lr.h - learning-rate policies of the [net] section (Darknet's get_current_rate). */
#ifndef CN_LR_H
#define CN_LR_H

#include <stdint.h>

#include "net/net.h"

/* The learning rate for optimiser step batch_num (0-based: the number of steps already taken),
 * from c->policy and its keys, after Darknet's burn_in ramp. Pure: no state, no randomness. */
float lr_at(const struct net_config *c, uint64_t batch_num);

#endif
