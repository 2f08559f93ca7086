// Precompiled header for libvmp3: the expensive, stable headers (Boost.Beast/Asio cost ~15 s per
// translation unit otherwise). Never include this file directly.
#pragma once

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
