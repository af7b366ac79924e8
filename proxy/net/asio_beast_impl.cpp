// proxy/net/asio_beast_impl: the single translation unit that compiles Asio and Beast
// (BOOST_ASIO_SEPARATE_COMPILATION / BOOST_BEAST_SEPARATE_COMPILATION), keeping rebuilds fast.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
