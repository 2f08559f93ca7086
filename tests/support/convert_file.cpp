#include "support/convert_file.hpp"

#include "common/io.hpp"
#include "support/fixtures.hpp"

namespace vmp3::test {

ConvertedFile ConvertFile(const std::filesystem::path& input, const media::ConvertOptions& options,
                          const media::ConvertControl& control) {
  ConvertedFile c;
  c.dir = TempDir();
  c.path = c.dir / "out.mp3";
  auto source = FileSource::Open(input);
  if (!source) {
    c.result = tl::unexpected(source.error());
    return c;
  }
  auto sink = AtomicFileSink::Create(c.path, /*overwrite=*/false);
  if (!sink) {
    c.result = tl::unexpected(sink.error());
    return c;
  }
  c.result = media::Convert(**source, **sink, options, control);
  if (c.result) {
    if (auto committed = (*sink)->Commit(); !committed)
      c.result = tl::unexpected(committed.error());
  }
  return c;
}

std::string Describe(const Error& e) {
  return std::string(ErrorCodeName(e.code)) + ": " + e.message;
}

}  // namespace vmp3::test
