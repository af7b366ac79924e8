// adapters/v1/boost_url: Boost.URL's compiled part. Debian 12 ships Boost.URL 1.81 as headers
// only (no libboost_url), so its sources are built here, in this one translation unit.
#include <boost/url/src.hpp>
