// reward_process.hpp -- an external reward program (a user's Python process serving HPS,
// PickScore, ImageReward or a VLM judge), started from an argument vector (never a shell) and
// spoken to in JSON lines over its stdin/stdout: the protocol of schemas/reward-process-1.json.
// Its stderr is kept so that a failure can show it. No torch.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "shapes/render.hpp"

namespace treerpo::scoring {

class RewardProcess {
 public:
  /// Starts `argv` (argv[0] is looked up on PATH) and exchanges the hello messages.
  /// \throws UsageError (empty argv), NoInputError (program not found), ResourceError (no hello in
  /// time, or the program died: exit 75), DataError (a malformed reply)
  RewardProcess(std::vector<std::string> argv, std::chrono::milliseconds timeout);
  /// Stops the program: "bye", then SIGTERM, then SIGKILL if it does not exit in time.
  ~RewardProcess();
  RewardProcess(const RewardProcess&) = delete;
  RewardProcess& operator=(const RewardProcess&) = delete;

  /// The name the program gave in its hello ("" if none) and its settings (a JSON object text).
  const std::string& name() const { return name_; }
  const std::string& settings() const { return settings_; }

  /// Scores a batch: one finite score per image. \throws ResourceError (timeout, the program
  /// died), DataError (wrong number of scores, a non-finite score, an error message, bad JSON)
  std::vector<double> score(const std::vector<std::string>& prompts, const std::vector<shapes::Image>& images);

  /// Sends "bye" and waits for a clean exit. \throws ResourceError when the program fails to exit
  /// in time or exits non-zero
  void finish();

 private:
  std::string exchange(const std::string& line);  // one request line -> one reply line
  std::string describe_failure(const std::string& what);
  void read_available(int fd, std::string& buffer);
  void kill_child();

  std::vector<std::string> argv_;
  std::chrono::milliseconds timeout_;
  pid_t pid_ = -1;
  int io_ = -1;   // our end of the socket that is the program's stdin and stdout
  int err_ = -1;  // read end of its stderr
  std::string out_buffer_, err_buffer_;
  std::string name_, settings_ = "{}";
  std::int64_t next_id_ = 0;
};

}  // namespace treerpo::scoring
