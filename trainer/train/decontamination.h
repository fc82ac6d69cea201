// A recipe's training data decontaminated against its own eval sets before training starts
// (data.decontaminate): Tulu 3's n-gram rule (trainer/eval/decontaminate.h) finds the training
// rows that contain an instance of data.eval_file or eval.generation_file, and the run trains
// on a copy of data.train_file without them, OUTPUT_DIR/decontaminated/<file name>, with the
// report (per eval set: instances found, the training lines, each pair's overlap) in
// OUTPUT_DIR/decontamination.json. Rank 0 scans and writes; every rank then trains on the copy.
#pragma once

#include "trainer/dist/communicator.h"
#include "trainer/train/recipe.h"

namespace flywheel {

// Does the above when the recipe asks, pointing recipe.data.train_file at the copy. UserError
// when it asks but names no eval set.
void decontaminate_recipe_data(Recipe& recipe, Communicator& comm);

}  // namespace flywheel
